/* Unit tests of the stream core: framing (wm_msgpack_measure), the reader's
 * validation and error reports, the writer, the option parser and JSON. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wm_cli.h"
#include "wm_io.h"
#include "wm_json.h"
#include "wm_proto.h"

static int failures;
#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); failures++; } } while (0)

static void test_measure(void)
{
    size_t size = 0;
    const char *why = NULL;
    const uint8_t map[] = { 0x81, 0xa4, 'k', 'i', 'n', 'd', 0xa1, 'x' };
    CHECK(wm_msgpack_measure(map, sizeof map, 1000, &size, &why) == WM_MEASURE_COMPLETE && size == sizeof map);
    for (size_t n = 1; n < sizeof map; n++)
        CHECK(wm_msgpack_measure(map, n, 1000, &size, &why) == WM_MEASURE_MORE && size > n);
    /* a bin32 header claiming 4 GiB - 1: refused from its 5 header bytes alone */
    const uint8_t huge[] = { 0x81, 0xa1, 'd', 0xc6, 0xff, 0xff, 0xff, 0xff };
    CHECK(wm_msgpack_measure(huge, sizeof huge, 256u << 20, &size, &why) == WM_MEASURE_BAD);
    CHECK(why && strstr(why, "cap"));
    /* an array32 claiming 4 billion elements */
    const uint8_t arr[] = { 0xdd, 0xff, 0xff, 0xff, 0xf0 };
    CHECK(wm_msgpack_measure(arr, sizeof arr, 1u << 20, &size, &why) == WM_MEASURE_BAD);
    const uint8_t never[] = { 0xc1 };
    CHECK(wm_msgpack_measure(never, 1, 100, &size, &why) == WM_MEASURE_BAD);
    /* a bin whose payload has not arrived yet asks for all of it */
    const uint8_t part[] = { 0xc5, 0x10, 0x00, 1, 2 };
    CHECK(wm_msgpack_measure(part, sizeof part, 1u << 20, &size, &why) == WM_MEASURE_MORE && size == 3 + 4096);
}

/* Writes messages built by fn into a temp file and returns its path. */
static void pack_frame(wm_msgbuf *mb, int w, int h, size_t data_len)
{
    wm_frame_info fi = { "c0", 0, 0.0, w, h, WM_PIX_RGB24 };
    wm_proto_pack_frame(&mb->pk, &fi, 0);
    wm_proto_pack_data_header(&mb->pk, data_len);
    for (size_t i = 0; i < data_len; i++) msgpack_sbuffer_write(&mb->sbuf, "\x7f", 1);
}

static void test_reader(void)
{
    char path[] = "/tmp/wm_unit_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    wm_msgbuf mb;
    wm_msgbuf_init(&mb);
    wm_proto_pack_stream(&mb.pk, "unit");
    pack_frame(&mb, 2, 2, 12);        /* good */
    size_t good_end = mb.sbuf.size;
    pack_frame(&mb, 2, 2, 11);        /* data length disagrees with the shape */
    CHECK(write(fd, mb.sbuf.data, mb.sbuf.size) == (ssize_t)mb.sbuf.size);
    close(fd);

    wm_error err = { 0 };
    wm_msg msg;
    wm_reader *r = wm_reader_open(path, 0, &err);
    CHECK(r != NULL);
    CHECK(wm_reader_next(r, &msg, &err) == WM_OK && wm_msg_is(&msg, "stream"));
    CHECK(wm_reader_next(r, &msg, &err) == WM_OK && wm_msg_is(&msg, "frame"));
    wm_frame_view v;
    CHECK(wm_proto_frame_get(&msg, &v, &err) == WM_OK && v.width == 2 && v.size == 12 && v.data[0] == 0x7f);
    CHECK(wm_reader_next(r, &msg, &err) == WM_E_INPUT);
    CHECK(strstr(err.msg, "byte offset") && strstr(err.msg, "11 bytes"));
    wm_reader_free(&r);
    CHECK(r == NULL);

    /* cut mid-message: the complete messages come out, then a truncation error */
    CHECK(truncate(path, (off_t)good_end - 3) == 0);
    r = wm_reader_open(path, 0, &err);
    CHECK(wm_reader_next(r, &msg, &err) == WM_OK);
    CHECK(wm_reader_next(r, &msg, &err) == WM_E_INPUT && strstr(err.msg, "truncated"));
    wm_reader_free(&r);

    /* a cap smaller than the frame refuses it */
    CHECK(truncate(path, (off_t)good_end) == 0);
    r = wm_reader_open(path, 50, &err);
    CHECK(wm_reader_next(r, &msg, &err) == WM_OK);
    CHECK(wm_reader_next(r, &msg, &err) == WM_E_INPUT && strstr(err.msg, "cap"));
    wm_reader_free(&r);

    r = wm_reader_open("/nonexistent/x.wms", 0, &err);
    CHECK(r == NULL && err.code == WM_E_INPUT && strstr(err.msg, "/nonexistent/x.wms"));
    unlink(path);
    wm_msgbuf_destroy(&mb);
}

static void test_writer_rename(void)
{
    char path[] = "/tmp/wm_unit_out_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    wm_error err;
    wm_writer *w = wm_writer_open(path, &err);
    CHECK(w && access(path, F_OK) != 0);   /* nothing under the final name yet */
    CHECK(wm_writer_send(w, "\x81\xa4kind\xa1x", 8, NULL, 0, &err) == WM_OK);
    CHECK(wm_writer_close(w, &err) == WM_OK && access(path, F_OK) == 0);
    wm_writer_free(&w);
    unlink(path);
    /* freed without close: the partial file disappears */
    w = wm_writer_open(path, &err);
    wm_writer_send(w, "\x80", 1, NULL, 0, &err);
    wm_writer_free(&w);
    CHECK(access(path, F_OK) != 0);
}

static void test_cli(void)
{
    wm_error err;
    wm_size sz;
    wm_rational r;
    size_t bytes;
    int idx;
    static const char *const fits[] = { "crop", "pad", "stretch", NULL };
    wm_opt o_size = { "size", 0, WM_OPT_SIZE, &sz, "WxH", "", NULL, 0, 0 };
    wm_opt o_rate = { "fps", 0, WM_OPT_RATIONAL, &r, "R", "", NULL, 0, 0 };
    wm_opt o_bytes = { "max", 0, WM_OPT_BYTES, &bytes, "B", "", NULL, 0, 0 };
    wm_opt o_fit = { "fit", 0, WM_OPT_CHOICE, &idx, "F", "", fits, 0, 0 };
    CHECK(wm_cli_parse_value(&o_size, "64x48", &err) == WM_OK && sz.w == 64 && sz.h == 48);
    CHECK(wm_cli_parse_value(&o_size, "0x5", &err) == WM_E_USAGE && strstr(err.msg, "--size"));
    CHECK(wm_cli_parse_value(&o_size, "64", &err) == WM_E_USAGE);
    CHECK(wm_cli_parse_value(&o_size, "-4x4", &err) == WM_E_USAGE);
    CHECK(wm_cli_parse_value(&o_rate, "30000/1001", &err) == WM_OK && r.num == 30000 && r.den == 1001);
    CHECK(wm_cli_parse_value(&o_rate, "29.97", &err) == WM_OK && r.num == 2997 && r.den == 100);
    CHECK(wm_cli_parse_value(&o_rate, "0", &err) == WM_E_USAGE);
    CHECK(wm_cli_parse_value(&o_bytes, "64M", &err) == WM_OK && bytes == (64u << 20));
    CHECK(wm_cli_parse_value(&o_bytes, "-1", &err) == WM_E_USAGE);
    CHECK(wm_cli_parse_value(&o_fit, "pad", &err) == WM_OK && idx == 1);
    CHECK(wm_cli_parse_value(&o_fit, "zoom", &err) == WM_E_USAGE && strstr(err.msg, "crop, pad, stretch"));

    int n = 0, quiet_flag = 0, first = 0;
    wm_opt opts[] = { { "frames", 'n', WM_OPT_INT, &n, "N", "", NULL, 1, 100 },
                      { "flag", 0, WM_OPT_FLAG, &quiet_flag, NULL, "", NULL, 0, 0 }, { 0 } };
    wm_tool tool = { "wm-unit", "test", "", NULL, NULL };
    wm_common common = { 0 };
    char *argv[] = { "wm-unit", "a.mp4", "--frames=7", "-", "--flag", "-q", "--", "--b", NULL };
    CHECK(wm_cli_parse(&tool, opts, &common, 8, argv, &first, &err) == WM_OK);
    CHECK(n == 7 && quiet_flag && common.quiet && first == 5);
    CHECK(!strcmp(argv[5], "a.mp4") && !strcmp(argv[6], "-") && !strcmp(argv[7], "--b"));
    char *bad[] = { "wm-unit", "--frames", "500", NULL };
    CHECK(wm_cli_parse(&tool, opts, &common, 3, bad, &first, &err) == WM_E_USAGE && strstr(err.msg, "--frames"));
    char *unknown[] = { "wm-unit", "--nope", NULL };
    CHECK(wm_cli_parse(&tool, opts, &common, 2, unknown, &first, &err) == WM_E_USAGE && strstr(err.msg, "--nope"));
    char *missing[] = { "wm-unit", "--frames", NULL };
    CHECK(wm_cli_parse(&tool, opts, &common, 2, missing, &first, &err) == WM_E_USAGE);
}

static void test_json(void)
{
    wm_strbuf b;
    wm_strbuf_init(&b);
    wm_json_str(&b, "a\"b\\c\n\x01\xff", 8);
    CHECK(!strcmp(b.s, "\"a\\\"b\\\\c\\n\\u0001\xef\xbf\xbd\""));
    wm_strbuf_reset(&b);
    wm_json_num(&b, NAN);
    wm_json_num(&b, 0.07);
    wm_json_num(&b, 3);
    CHECK(!strcmp(b.s, "null0.073"));
    wm_strbuf_reset(&b);
    wm_json_base64(&b, (const unsigned char *)"wm!", 3);
    wm_json_base64(&b, (const unsigned char *)"ab", 2);
    CHECK(!strcmp(b.s, "\"d20h\"\"YWI=\""));
    wm_strbuf_free(&b);
    CHECK(wm_f16_to_f32(0x3c00) == 1.0f && wm_f16_to_f32(0xc000) == -2.0f);
    CHECK(isinf(wm_f16_to_f32(0x7c00)) && isnan(wm_f16_to_f32(0x7e00)));
    CHECK(wm_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
}

/* Map keys that are maps, nested 40 deep: the JSON stays small (each such
 * key is cut at 256 bytes), not 2^40 bytes of escapes (found by fuzz_stream). */
static void test_json_nested_keys(void)
{
    enum { DEPTH = 40 };
    const msgpack_object one = { .type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = 1 };
    msgpack_object obj[DEPTH + 1];
    msgpack_object_kv kv[DEPTH];
    obj[0] = one;
    for (int i = 0; i < DEPTH; i++) {
        kv[i].key = obj[i];
        kv[i].val = one;
        obj[i + 1].type = MSGPACK_OBJECT_MAP;
        obj[i + 1].via.map.size = 1;
        obj[i + 1].via.map.ptr = &kv[i];
    }
    wm_strbuf b;
    wm_strbuf_init(&b);
    wm_json_obj(&b, &obj[DEPTH], NULL, NULL);
    CHECK(!b.oom && b.len < 4096 && b.s[0] == '{' && b.s[b.len - 1] == '}');
    wm_strbuf_free(&b);
}

int main(void)
{
    test_measure();
    test_reader();
    test_writer_rename();
    test_cli();
    test_json();
    test_json_nested_keys();
    if (failures) { fprintf(stderr, "%d checks failed\n", failures); return 1; }
    puts("unit_stream: all checks passed");
    return 0;
}
