/* wm_jsonparse and wm_report: valid JSON read back exactly, every kind of
 * malformed text refused with a column, the bounds (depth, line length)
 * held; then a report's row order, escaping, contract checks and summary,
 * and random corruptions of a good line that must never crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wm_jsonparse.h"
#include "wm_report.h"
#include "wm_rng.h"

static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* text must parse and write back as want (NULL: as text itself). */
static void expect_json(const char *text, const char *want)
{
    wm_error err = { 0 };
    wm_jnode *v = wm_jsonparse_new(text, strlen(text), &err);
    CHECK(v != NULL, "'%s' refused: %s", text, err.msg);
    if (!v) return;
    wm_strbuf b;
    wm_strbuf_init(&b);
    wm_jsonparse_write(&b, v);
    if (!want) want = text;
    CHECK(b.s && strcmp(b.s, want) == 0, "'%s' wrote back as '%s', wanted '%s'", text, b.s ? b.s : "", want);
    wm_strbuf_free(&b);
    wm_jsonparse_free(&v);
    CHECK(v == NULL, "free leaves the pointer");
}

static void expect_bad(const char *label, const char *text, size_t n, const char *want)
{
    wm_error err = { 0 };
    wm_jnode *v = wm_jsonparse_new(text, n, &err);
    CHECK(v == NULL, "%s: accepted", label);
    if (v) { wm_jsonparse_free(&v); return; }
    CHECK(err.code == WM_E_INPUT, "%s: code %d", label, err.code);
    CHECK(strstr(err.msg, want) != NULL, "%s: message '%s' does not mention '%s'", label, err.msg, want);
    CHECK(strncmp(err.msg, "column ", 7) == 0, "%s: message '%s' names no column", label, err.msg);
}

static void test_parse(void)
{
    expect_json("{}", NULL);
    expect_json("[]", NULL);
    expect_json(" {\"a\" : [1, -2.5, 1e3, true, false, null, \"x\"] }\r\n", "{\"a\":[1,-2.5,1000,true,false,null,\"x\"]}");
    expect_json("\"\\u00e9\\ud83d\\ude00 \\\" \\\\ \\/ \\n\"", "\"\xc3\xa9\xf0\x9f\x98\x80 \\\" \\\\ / \\n\"");
    expect_json("\"\xe6\x97\xa5\xe6\x9c\xac\"", NULL);
    expect_json("0.000123", "0.000123");
    expect_json("-0", "-0");
    printf("ok - valid JSON reads back\n");

    /* numbers written as integers are marked: a reader that needs exact
     * integers (safetensors offsets) tells 2 from 2.0 */
    const struct { const char *text; int integer; } nums[] = {
        { "0", 1 }, { "-7", 1 }, { "9007199254740991", 1 }, { "2.0", 0 }, { "2e0", 0 }, { "2E+1", 0 }, { "-0.5", 0 },
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        wm_error err = { 0 };
        wm_jnode *v = wm_jsonparse_new(nums[i].text, strlen(nums[i].text), &err);
        CHECK(v && v->type == WM_JNUM && v->integer == nums[i].integer, "'%s': integer %d, wanted %d", nums[i].text,
              v ? v->integer : -1, nums[i].integer);
        wm_jsonparse_free(&v);
    }
    printf("ok - numbers written as integers are marked\n");

    expect_bad("empty", "", 0, "expected a value");
    expect_bad("trailing text", "{} x", 4, "after the value");
    expect_bad("trailing comma", "[1,]", 4, "expected a value");
    expect_bad("object trailing comma", "{\"a\":1,}", 8, "expected a string key");
    expect_bad("single quotes", "{'a':1}", 7, "expected a string key");
    expect_bad("NaN", "NaN", 3, "expected a value");
    expect_bad("Infinity", "[Infinity]", 10, "expected a value");
    expect_bad("leading zero", "012", 3, "leading zero");
    expect_bad("bare dot", "1.", 2, "decimal point");
    expect_bad("bad exponent", "1e", 2, "exponent");
    expect_bad("huge", "1e999", 5, "out of range");
    expect_bad("unterminated", "\"abc", 4, "unterminated");
    expect_bad("control char", "\"a\tb\"", 5, "control character");
    expect_bad("bad escape", "\"\\x\"", 4, "bad escape");
    expect_bad("lone high surrogate", "\"\\ud800x\"", 9, "surrogate");
    expect_bad("lone low surrogate", "\"\\udc00\"", 8, "surrogate");
    expect_bad("NUL escape", "\"\\u0000\"", 8, "\\u0000");
    expect_bad("invalid UTF-8", "\"\xff\"", 3, "UTF-8");
    expect_bad("overlong UTF-8", "\"\xc0\xaf\"", 4, "UTF-8");
    expect_bad("duplicate key", "{\"a\":1,\"b\":2,\"a\":3}", 19, "duplicate key \"a\"");
    expect_bad("missing colon", "{\"a\" 1}", 7, "':'");
    expect_bad("truncated", "{\"a\":[1,2", 9, "expected ',' or ']'");
    expect_bad("comment", "[1] // x", 8, "after the value");
    expect_bad("NUL byte", "[1\0]", 4, "expected ',' or ']'");

    wm_error err = { 0 };
    wm_jnode *v = wm_jsonparse_new("[1, x]", 6, &err);
    CHECK(!v && strcmp(err.msg, "column 5: expected a value") == 0, "column: '%s'", err.msg);

    /* depth: 64 levels are fine, 65 are refused */
    char deep[200];
    for (int d = 64; d <= 65; d++) {
        memset(deep, '[', (size_t)d);
        memset(deep + d, ']', (size_t)d);
        v = wm_jsonparse_new(deep, 2 * (size_t)d, &err);
        CHECK((v != NULL) == (d == 64), "depth %d: %s", d, v ? "accepted" : err.msg);
        if (!v) CHECK(strstr(err.msg, "deeper than 64"), "depth message '%s'", err.msg);
        wm_jsonparse_free(&v);
    }
    /* a big object: the duplicate check must not be quadratic */
    wm_strbuf big;
    wm_strbuf_init(&big);
    wm_strbuf_add(&big, "{", 1);
    for (int i = 0; i < 200000; i++) wm_strbuf_addf(&big, "%s\"k%d\":%d", i ? "," : "", i, i);
    wm_strbuf_add(&big, "}", 1);
    v = wm_jsonparse_new(big.s, big.len, &err);
    CHECK(v && v->len == 200000, "200000 keys: %s", v ? "wrong count" : err.msg);
    const wm_jnode *k = wm_jsonparse_get(v, "k199999");
    CHECK(k && k->type == WM_JNUM && k->u.num == 199999, "lookup in a big object");
    wm_jsonparse_free(&v);
    wm_strbuf_free(&big);
    printf("ok - malformed JSON refused with a column; depth 64 and large objects bounded\n");
}

static const char good_row[] =
    "{\"source\":\"a.mp4\",\"clip\":\"c1\",\"frames\":4,\"size\":[64,64],\"surprise\":[null,1.5,2,0.5],"
    "\"surprise_mean\":1.33,\"surprise_max\":2,\"peak_frame\":2,\"peak_xy\":[3,4],\"plausibility\":0.4,"
    "\"flicker\":0.1,\"smoothness\":0.9,\"consistency\":0.8,\"synth\":{\"seed\":7,\"category\":\"gravity\","
    "\"possible\":false,\"violation_frame\":2,\"pair\":1,\"variant\":\"impossible\"},"
    "\"thumbs\":\"data:image/png;base64,iVBORw0KGgo=\",\"thumbs_frames\":[1,3]}";

static void add(wm_report *r, const char *line, long lineno)
{
    wm_error err = { 0 };
    wm_status st = wm_report_add_line(r, line, strlen(line), "in.jsonl", lineno, &err);
    CHECK(st == WM_OK, "line %ld refused: %s", lineno, err.msg);
}

static void expect_row_refused(const char *label, const char *line, const char *want)
{
    wm_error err = { 0 };
    wm_report *r = wm_report_new(NULL, &err);
    wm_status st = wm_report_add_line(r, line, strlen(line), "x.jsonl", 9, &err);
    CHECK(st == WM_E_INPUT, "%s: status %d", label, st);
    CHECK(strncmp(err.msg, "x.jsonl:9: ", 11) == 0, "%s: '%s' does not name file:line", label, err.msg);
    CHECK(strstr(err.msg, want) != NULL, "%s: '%s' does not mention '%s'", label, err.msg, want);
    CHECK(wm_report_count(r) == 0, "%s: row kept", label);
    wm_report_free(&r);
}

static void test_report(void)
{
    wm_error err = { 0 };
    wm_report *r = wm_report_new("night <run>", &err);
    add(r, "{\"clip\":\"high\",\"plausibility\":0.9,\"surprise\":[null,1]}", 1);
    add(r, "", 2);
    add(r, "  \r", 3);
    add(r, good_row, 4);
    add(r, "{\"clip\":\"broken\",\"source\":\"b.mp4\",\"error\":\"cannot decode <x> & \\\"y\\\"\"}", 5);
    add(r, "{\"clip\":\"unscored\",\"plausibility\":null}", 6);
    add(r, "{\"clip\":\"low<script>\",\"plausibility\":0.1,\"note\":\"</td>\","
           "\"synth\":{\"seed\":7,\"category\":\"gravity\",\"possible\":true,\"pair\":1}}", 7);
    add(r, "{\"clip\":\"tie-later\",\"plausibility\":0.9}", 8);
    CHECK(wm_report_count(r) == 6, "count %zu, wanted 6 (blank lines skipped)", wm_report_count(r));
    wm_strbuf html;
    wm_strbuf_init(&html);
    CHECK(wm_report_render(r, &html, &err) == WM_OK, "render: %s", err.msg);
    const char *page = html.s ? html.s : "";
    /* order: failed, then plausibility ascending (ties in input order), then unscored */
    const char *order[] = { "data-clip=\"broken\"", "data-clip=\"low&lt;script&gt;\"", "data-clip=\"c1\"",
                            "data-clip=\"high\"", "data-clip=\"tie-later\"", "data-clip=\"unscored\"" };
    const char *at = page;
    for (int i = 0; i < 6; i++) {
        const char *p = strstr(at, order[i]);
        CHECK(p != NULL, "row %d (%s) missing or out of order", i + 1, order[i]);
        if (p) at = p;
    }
    CHECK(strstr(page, "<script>alert") == NULL && strstr(page, "low<script>") == NULL, "clip id not escaped");
    CHECK(strstr(page, "cannot decode &lt;x&gt; &amp; &quot;y&quot;") != NULL, "error not escaped");
    CHECK(strstr(page, "<title>night &lt;run&gt;</title>") != NULL, "title not escaped");
    CHECK(strstr(page, "&lt;/td&gt;") != NULL, "unknown field not shown escaped");
    CHECK(strstr(page, "<img class=\"thumbs\"") && strstr(page, "src=\"data:image/png;base64,iVBORw0KGgo=\""),
          "thumbnail strip missing");
    CHECK(strstr(page, "<line class=\"violation\"") != NULL, "violation frame not marked");
    CHECK(strstr(page, "<circle class=\"peak\"") != NULL, "peak not marked");
    CHECK(strstr(page, "<dd id=\"n-clips\">6</dd>") != NULL, "summary: clips");
    CHECK(strstr(page, "<dd id=\"n-failed\">1</dd>") != NULL, "summary: failures");
    CHECK(strstr(page, "<dd id=\"mean-plausibility\">0.575 ") != NULL, "summary: mean plausibility");
    /* pair 1: impossible c1 at 0.4, possible at 0.1: ranked wrong */
    CHECK(strstr(page, "<dd id=\"pairs-right\">0 of 1 ") != NULL, "summary: pairs");
    CHECK(strstr(page, "0.1 ") == NULL && strstr(page, "0.100<div") != NULL, "plausibility with 3 decimals");
    CHECK(strstr(page, "http://") == NULL && strstr(page, "https://") == NULL, "the page names a network address");
    wm_strbuf_free(&html);
    wm_report_free(&r);
    CHECK(r == NULL, "free leaves the pointer");
    printf("ok - rows in order, input escaped, summary counted\n");

    /* markers off the curve (a frame past the end, 1e300) are not drawn */
    r = wm_report_new(NULL, &err);
    add(r, "{\"plausibility\":0.5,\"surprise\":[null,1,2],\"peak_frame\":1e300,\"thumbs\":\"data:image/png;base64,AA==\","
           "\"thumbs_frames\":[-5,2],\"synth\":{\"violation_frame\":3}}", 1);
    wm_strbuf_init(&html);
    CHECK(wm_report_render(r, &html, &err) == WM_OK, "render: %s", err.msg);
    CHECK(html.s && !strstr(html.s, "class=\"peak\"") && !strstr(html.s, "<line class=\"violation\"") &&
          !strstr(html.s, "<rect class=\"strip\""), "markers off the axis drawn");
    CHECK(html.s && strstr(html.s, "peak at frame 1e+300"), "the wild peak is still named");
    wm_strbuf_free(&html);
    wm_report_free(&r);

    expect_row_refused("not JSON", "{\"clip\":", "column 9");
    expect_row_refused("not an object", "[1,2]", "expected a JSON object");
    expect_row_refused("plausibility a string", "{\"plausibility\":\"high\"}", "plausibility: expected a number");
    expect_row_refused("clip a number", "{\"clip\":3}", "clip: expected a string");
    expect_row_refused("surprise with a string", "{\"surprise\":[1,\"x\"]}", "surprise: expected an array");
    expect_row_refused("size of three", "{\"size\":[1,2,3]}", "size: expected [number, number]");
    expect_row_refused("thumbs javascript", "{\"thumbs\":\"javascript:alert(1)\"}", "thumbs: expected a data:image");
    expect_row_refused("thumbs quote", "{\"thumbs\":\"data:image/png;base64,AA\\\" onerror=\\\"x\"}", "thumbs:");
    expect_row_refused("thumbs remote", "{\"thumbs\":\"https://example.com/x.png\"}", "thumbs:");
    expect_row_refused("possible a string", "{\"synth\":{\"possible\":\"yes\"}}", "synth.possible: expected true or false");
    expect_row_refused("synth a list", "{\"synth\":[]}", "synth: expected an object");
    printf("ok - rows that break the contract refused naming file:line and the field\n");
}

/* (seed, category, pair) names a pair: pair 0 of gravity is not pair 0 of
 * solidity, and training clips (pair -1) are no pair at all. */
static void test_pairs(void)
{
    wm_error err = { 0 };
    wm_report *r = wm_report_new(NULL, &err);
    const char *rows[] = {
        "{\"plausibility\":0.9,\"synth\":{\"seed\":1,\"category\":\"gravity\",\"possible\":true,\"pair\":0}}",
        "{\"plausibility\":0.2,\"synth\":{\"seed\":1,\"category\":\"gravity\",\"possible\":false,\"pair\":0}}",
        "{\"plausibility\":0.1,\"synth\":{\"seed\":1,\"category\":\"solidity\",\"possible\":true,\"pair\":0}}",
        "{\"plausibility\":0.5,\"synth\":{\"seed\":1,\"category\":\"solidity\",\"possible\":false,\"pair\":0}}",
        "{\"plausibility\":0.0000123,\"synth\":{\"seed\":2,\"category\":\"gravity\",\"possible\":false,\"pair\":0}}",
        "{\"plausibility\":0.7,\"synth\":{\"seed\":1,\"category\":\"none\",\"possible\":true,\"pair\":-1}}",
        NULL };
    for (int i = 0; rows[i]; i++) add(r, rows[i], i + 1);
    wm_strbuf html;
    wm_strbuf_init(&html);
    CHECK(wm_report_render(r, &html, &err) == WM_OK, "render: %s", err.msg);
    CHECK(html.s && strstr(html.s, "<dd id=\"pairs-right\">1 of 2 "), "pairs by (seed, category, pair)");
    CHECK(html.s && strstr(html.s, ">1.2e-05<div"), "a tiny plausibility keeps its digits");
    wm_strbuf_free(&html);
    wm_report_free(&r);

    /* a big batch: 10000 pairs, in reverse order, every one ranked right */
    r = wm_report_new(NULL, &err);
    char line[256];
    for (int i = 19999; i >= 0; i--) {
        snprintf(line, sizeof line, "{\"plausibility\":%.2f,\"synth\":{\"seed\":3,\"category\":\"c%d\","
                 "\"possible\":%s,\"pair\":%d}}", i % 2 ? 0.75 : 0.25, i / 2 % 7, i % 2 ? "true" : "false", i / 2);
        add(r, line, 20000 - i);
    }
    wm_strbuf_init(&html);
    CHECK(wm_report_render(r, &html, &err) == WM_OK, "render: %s", err.msg);
    CHECK(html.s && strstr(html.s, "<dd id=\"pairs-right\">10000 of 10000 "), "10000 pairs");
    wm_strbuf_free(&html);
    wm_report_free(&r);
    printf("ok - pairs matched by (seed, category, pair), 10000 of them\n");
}

static void test_read(void)
{
    wm_error err = { 0 };
    wm_report *r = wm_report_new(NULL, &err);
    char text[] = "{\"clip\":\"a\",\"plausibility\":0.5}\r\n\n{\"clip\":\"b\"}\n{\"clip\":";
    FILE *f = fmemopen(text, strlen(text), "r");
    wm_status st = wm_report_read(r, f, "mem", &err);
    fclose(f);
    CHECK(st == WM_E_INPUT && strncmp(err.msg, "mem:4: column 9:", 16) == 0, "last line without newline: %d '%s'",
          st, err.msg);
    CHECK(wm_report_count(r) == 2, "rows before the bad line kept: %zu", wm_report_count(r));

    /* a line over the cap is refused before it is parsed */
    size_t n = WM_REPORT_MAX_LINE + 10;
    char *huge = malloc(n);
    if (!huge) { CHECK(0, "malloc"); wm_report_free(&r); return; }
    memset(huge, ' ', n);
    huge[0] = '\n';
    f = fmemopen(huge, n, "r");
    st = wm_report_read(r, f, "huge", &err);
    fclose(f);
    free(huge);
    CHECK(st == WM_E_INPUT && strstr(err.msg, "huge:2: line longer than 64 MiB"), "long line: %d '%s'", st, err.msg);
    wm_report_free(&r);
    printf("ok - lines read with file:line, a line over 64 MiB refused\n");
}

static void test_corruptions(void)
{
    wm_rng rng;
    wm_rng_seed(&rng, 12345);
    size_t n = strlen(good_row);
    char *buf = malloc(n + 1);
    int accepted = 0, refused = 0;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(buf, good_row, n + 1);
        int flips = 1 + (int)wm_rng_below(&rng, 4);
        for (int k = 0; k < flips; k++) buf[wm_rng_below(&rng, (uint32_t)n)] = (char)wm_rng_below(&rng, 256);
        size_t len = wm_rng_below(&rng, 4) == 0 ? wm_rng_below(&rng, (uint32_t)n) : n;
        wm_error err = { 0 };
        wm_report *r = wm_report_new(NULL, &err);
        wm_status st = wm_report_add_line(r, buf, len, "f", 1, &err);
        if (st == WM_OK) {
            accepted++;
            wm_strbuf html;
            wm_strbuf_init(&html);
            CHECK(wm_report_render(r, &html, &err) == WM_OK, "render after corruption");
            wm_strbuf_free(&html);
        } else {
            refused++;
            CHECK(st == WM_E_INPUT && strncmp(err.msg, "f:1: ", 5) == 0, "refusal '%s'", err.msg);
        }
        wm_report_free(&r);
    }
    free(buf);
    printf("ok - 20000 corrupted rows: %d accepted, %d refused, no crash\n", accepted, refused);
}

int main(void)
{
    test_parse();
    test_report();
    test_pairs();
    test_read();
    test_corruptions();
    if (failures) fprintf(stderr, "%d failures\n", failures);
    return failures ? 1 : 0;
}
