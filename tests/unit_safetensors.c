/* wm_safetensors: a round trip, then hostile files (truncated, header
 * length 2^60, offsets outside the file, wrong dtype, shape/size mismatch,
 * overlaps, gaps, malformed JSON) that must each be refused with a clear
 * WM_E_INPUT message, then random corruptions that must never crash. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wm_nn.h"
#include "wm_proto.h"
#include "wm_safetensors.h"

static int failures;
static char dir[] = "/tmp/wm_unit_st_XXXXXX";

#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) { perror(path); exit(1); }
    fclose(f);
}

/* A file made of an explicit header length, header text and n data bytes. */
static void write_raw(const char *path, uint64_t hlen, const char *header, size_t data_len)
{
    size_t n = strlen(header);
    unsigned char *buf = calloc(8 + n + data_len + 1, 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + 8, header, n);
    for (size_t i = 0; i < data_len; i++) buf[8 + n + i] = (unsigned char)i;
    write_bytes(path, buf, 8 + n + data_len);
    free(buf);
}

static void write_header(const char *path, const char *header, size_t data_len)
{
    write_raw(path, strlen(header), header, data_len);
}

/* Opening path must fail with WM_E_INPUT and a message containing want. */
static void expect_refused(const char *label, const char *path, const char *want)
{
    wm_error err = { 0 };
    wm_safetensors *st = wm_safetensors_open(path, &err);
    CHECK(st == NULL, "%s: accepted", label);
    if (st) { wm_safetensors_close(&st); return; }
    CHECK(err.code == WM_E_INPUT, "%s: code %d, message '%s'", label, err.code, err.msg);
    CHECK(strstr(err.msg, want) != NULL, "%s: message '%s' does not mention '%s'", label, err.msg, want);
    CHECK(strstr(err.msg, path) != NULL, "%s: message '%s' does not name the file", label, err.msg);
    printf("ok - refused %s: %s\n", label, err.msg);
}

static void test_roundtrip(char *good, size_t cap)
{
    float w[2 * 3] = { 1, -2, 3.5f, 1e-8f, -0.0f, 65504 };
    uint16_t h[4];
    float hv[4] = { 1.0f, -0.5f, 6.1e-5f, 3.0e-7f };   /* normal, normal, near-min normal, subnormal */
    for (int i = 0; i < 4; i++) h[i] = wm_f32_to_f16(hv[i]);
    int32_t ints[2] = { 7, -7 };
    wm_safetensors_entry t[3] = {
        { "enc.weight", WM_ST_F32, 2, { 2, 3 }, w },
        { "half \"quoted\"\n", WM_ST_F16, 1, { 4 }, h },
        { "count", WM_ST_I32, 1, { 2 }, ints },
    };
    const char *meta[] = { "arch", "conv-ae", "latent_channels", "8" };
    path_of(good, cap, "good.safetensors");
    wm_error err = { 0 };
    CHECK(wm_safetensors_write(good, t, 3, meta, 2, &err) == WM_OK, "write: %s", err.msg);
    wm_safetensors *st = wm_safetensors_open(good, &err);
    CHECK(st != NULL, "reopen: %s", err.msg);
    if (!st) return;
    CHECK(wm_safetensors_count(st) == 3, "count %zu", wm_safetensors_count(st));
    CHECK(wm_safetensors_meta(st, "latent_channels") && !strcmp(wm_safetensors_meta(st, "latent_channels"), "8"),
          "metadata lost");
    CHECK(wm_safetensors_meta(st, "absent") == NULL, "phantom metadata");
    const wm_safetensors_tensor *a = wm_safetensors_find(st, "enc.weight");
    float back[6];
    CHECK(a && a->rank == 2 && a->shape[0] == 2 && a->shape[1] == 3, "shape lost");
    CHECK(a && wm_safetensors_read_f32(a, back, 6, &err) == WM_OK && !memcmp(back, w, sizeof w), "F32 data lost");
    CHECK(a && ((uintptr_t)a->data % 8) == 0, "data area not 8-byte aligned");
    const wm_safetensors_tensor *b = wm_safetensors_find(st, "half \"quoted\"\n");
    float hb[4];
    CHECK(b && wm_safetensors_read_f32(b, hb, 4, &err) == WM_OK, "F16 read: %s", err.msg);
    for (int i = 0; b && i < 4; i++)
        CHECK(fabsf(hb[i] - hv[i]) <= 1e-3f * fabsf(hv[i]) + 6e-8f, "F16 value %d: %g vs %g", i, hb[i], hv[i]);
    const wm_safetensors_tensor *c = wm_safetensors_find(st, "count");
    CHECK(c && wm_safetensors_read_f32(c, back, 2, &err) == WM_E_INPUT && strstr(err.msg, "I32"),
          "an I32 tensor read as floats: '%s'", err.msg);
    CHECK(a && wm_safetensors_read_f32(a, back, 5, &err) == WM_E_INPUT && strstr(err.msg, "elements"),
          "an element-count mismatch passed: '%s'", err.msg);
    wm_safetensors_close(&st);
    CHECK(st == NULL, "close does not clear the pointer");
    printf("ok - round trip (F32, F16, I32, metadata, escaped names)\n");

    /* a temp file never remains, and the file is replaced atomically */
    CHECK(wm_safetensors_write(good, t, 1, NULL, 0, &err) == WM_OK, "rewrite: %s", err.msg);
    st = wm_safetensors_open(good, &err);
    CHECK(st && wm_safetensors_count(st) == 1 && wm_safetensors_meta_count(st) == 0, "rewrite not seen");
    wm_safetensors_close(&st);
    CHECK(wm_safetensors_write(good, t, 3, meta, 2, &err) == WM_OK, "write: %s", err.msg);
    char bad[512];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.safetensors", dir);
    CHECK(wm_safetensors_write(bad, t, 1, NULL, 0, &err) == WM_E_OUTPUT, "unwritable path accepted");

    for (float f = -70000; f < 70000; f += 37.3f) {
        float r = wm_f16_to_f32(wm_f32_to_f16(f));
        if (fabsf(f) < 65520) CHECK(fabsf(r - f) <= fabsf(f) / 1024 + 1e-7f && fabsf(r) <= 65504, "f16 round trip %g -> %g", f, r);
        else CHECK(isinf(r), "f16 overflow %g -> %g", f, r);
    }
}

static void test_hostile(const char *good)
{
    char p[512];
    path_of(p, sizeof p, "bad.safetensors");

    /* truncations of a valid file */
    FILE *f = fopen(good, "rb");
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_bytes(p, buf, 0);
    expect_refused("an empty file", p, "too short");
    write_bytes(p, buf, 5);
    expect_refused("a 5-byte file", p, "too short");
    write_bytes(p, buf, 40);
    expect_refused("a file cut inside its header", p, "runs past the end");
    write_bytes(p, buf, n - 1);
    expect_refused("a file cut inside its data", p, "outside the");

    write_raw(p, (uint64_t)1 << 60, "{}", 0);
    expect_refused("header length 2^60", p, "over the");
    write_raw(p, UINT64_MAX, "{}", 0);
    expect_refused("header length 2^64-1", p, "over the");

    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8000]}}", 8);
    expect_refused("offsets outside the file", p, "outside the");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8);
    expect_refused("offsets reversed", p, "end before");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8);
    expect_refused("shape/size mismatch", p, "need 12 bytes");
    write_header(p, "{\"a\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4);
    expect_refused("dtype/size mismatch", p, "need 8 bytes");
    write_header(p, "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    expect_refused("an unknown dtype", p, "unknown dtype");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8);
    expect_refused("a shape product that overflows", p, "overflows");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
    expect_refused("overlapping tensors", p, "overlaps");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
    expect_refused("a gap before a tensor", p, "unused bytes");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12);
    expect_refused("trailing data bytes", p, "cover 8 of the 12");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16);
    expect_refused("a duplicate tensor name", p, "duplicate key \"a\"");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}", 8);
    expect_refused("an unknown key", p, "unknown key");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    expect_refused("a duplicate key", p, "duplicate key");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8);
    expect_refused("missing data_offsets", p, "lacks");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8);
    expect_refused("a negative dimension", p, "non-negative integer");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8);
    expect_refused("a fractional dimension", p, "integer");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8);
    expect_refused("a leading zero", p, "leading zero");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8);
    expect_refused("rank 9", p, "more than 8");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999999999999]}}", 8);
    expect_refused("a huge number", p, "too large");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,16]}}", 8);
    expect_refused("three offsets", p, "more than 2");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8);
    expect_refused("an unclosed object", p, "expected ',' or '}'");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}}", 8);
    expect_refused("trailing bytes", p, "after the value");
    write_header(p, "[1,2]", 0);
    expect_refused("a JSON array", p, "not a JSON object");
    write_header(p, "{\"a", 0);
    expect_refused("an unterminated string", p, "unterminated");
    write_header(p, "{\"a\\x\":{}}", 0);
    expect_refused("a bad escape", p, "bad escape");
    write_header(p, "{\"a\\ud800\":{}}", 0);
    expect_refused("an unpaired surrogate", p, "surrogate");
    write_header(p, "{\"a\\u0000b\":{}}", 0);
    expect_refused("an escaped NUL", p, "\\u0000");
    write_header(p, "{\"a\xff\":{}}", 0);
    expect_refused("invalid UTF-8", p, "UTF-8");
    write_header(p, "{\"__metadata__\":{\"k\":1}}", 0);
    expect_refused("a non-string metadata value", p, "must be strings");
    write_header(p, "{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}", 0);
    expect_refused("a duplicate metadata key", p, "duplicate key \"k\"");
    write_header(p, "{\"__metadata__\":{},\"__metadata__\":{}}", 0);
    expect_refused("two metadata objects", p, "duplicate");
    write_header(p, "{\"a\":{\"dtype\":{\"x\":{\"y\":[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]}}}}", 0);
    expect_refused("nesting where a string belongs", p, "expected a string");
    char deep[300] = "{\"a\":";
    for (int i = 0; i < 100; i++) strcat(deep, "[");
    for (int i = 0; i < 100; i++) strcat(deep, "]");
    strcat(deep, "}");
    write_header(p, deep, 0);
    expect_refused("nesting 100 deep", p, "deeper than 64");

    /* integers are read exactly (the JSON parser holds doubles: below 2^53
     * they are exact, above refused) and only when written as integers */
    write_header(p, "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,9007199254740991]}}", 2);
    expect_refused("offset 2^53-1", p, "[0, 9007199254740991] lie outside");
    write_header(p, "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,9007199254740993]}}", 2);
    expect_refused("offset 2^53+1", p, "too large");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2e0],\"data_offsets\":[0,8]}}", 8);
    expect_refused("an exponent", p, "expected an integer");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-0],\"data_offsets\":[0,8]}}", 8);
    expect_refused("minus zero", p, "non-negative integer");
    write_header(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8);
    expect_refused("a dimension as a string", p, "non-negative integer");

    /* well-formed edge cases are accepted */
    wm_error err = { 0 };
    write_header(p, "{}", 0);
    wm_safetensors *st = wm_safetensors_open(p, &err);
    CHECK(st && wm_safetensors_count(st) == 0, "an empty file set refused: %s", err.msg);
    wm_safetensors_close(&st);
    write_header(p, " {\"b\" : {\"shape\":[0],\"dtype\":\"BF16\",\"data_offsets\":[0,0]}, \"\\u00e9\\ud83d\\ude00\":"
                    "{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}   ", 1);
    expect_refused("a header starting with a space", p, "not a JSON object");
    write_header(p, "{\"b\" : {\"shape\":[0],\"dtype\":\"BF16\",\"data_offsets\":[0,0]}, \"\\u00e9\\ud83d\\ude00\":"
                    "{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}   ", 1);
    st = wm_safetensors_open(p, &err);
    CHECK(st && wm_safetensors_find(st, "\xc3\xa9\xf0\x9f\x98\x80") && wm_safetensors_find(st, "b")->numel == 0,
          "valid edge cases refused: %s", err.msg);
    wm_safetensors_close(&st);
    printf("ok - edge cases accepted (empty, zero-size, scalar, escaped names, padding)\n");

    path_of(p, sizeof p, "missing.safetensors");
    st = wm_safetensors_open(p, &err);
    CHECK(!st && strstr(err.msg, "missing.safetensors"), "a missing file: '%s'", err.msg);
}

/* Random byte corruptions of a valid file: never a crash, and whatever
 * opens still satisfies the invariants. */
static void test_corruptions(const char *good)
{
    FILE *f = fopen(good, "rb");
    unsigned char orig[4096], buf[4096];
    size_t n = fread(orig, 1, sizeof orig, f);
    fclose(f);
    char p[512];
    path_of(p, sizeof p, "fuzz.safetensors");
    wm_rng rng;
    wm_rng_seed(&rng, 7);
    int opened = 0, refused = 0;
    for (int round = 0; round < 2000; round++) {
        memcpy(buf, orig, n);
        int flips = 1 + (int)wm_rng_below(&rng, 4);
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)wm_rng_below(&rng, n);
            buf[at] = (unsigned char)(wm_rng_below(&rng, 3) == 0 ? wm_rng_u64(&rng) : buf[at] ^ (1u << wm_rng_below(&rng, 8)));
        }
        size_t len = wm_rng_below(&rng, 8) == 0 ? (size_t)wm_rng_below(&rng, n) : n;
        write_bytes(p, buf, len);
        wm_error err = { 0 };
        wm_safetensors *st = wm_safetensors_open(p, &err);
        if (!st) { refused++; CHECK(err.code == WM_E_INPUT && err.msg[0], "refusal without a message"); continue; }
        opened++;
        for (size_t i = 0; i < wm_safetensors_count(st); i++) {
            const wm_safetensors_tensor *t = wm_safetensors_at(st, i);
            volatile unsigned sum = 0;
            for (size_t b = 0; b < t->nbytes; b++) sum += t->data[b];   /* touches every byte it claims */
            (void)sum;
        }
        wm_safetensors_close(&st);
    }
    printf("ok - 2000 corrupted files: %d opened, %d refused, no crash\n", opened, refused);
}

int main(void)
{
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    char good[512];
    test_roundtrip(good, sizeof good);
    test_hostile(good);
    test_corruptions(good);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    if (failures) fprintf(stderr, "%d failures\n", failures);
    return failures ? 1 : 0;
}
