/* libFuzzer target: arbitrary bytes as a wm stream, through the real
 * reader (framing, caps, validation) and the JSON writer wm-cat uses. */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wm_io.h"
#include "wm_json.h"
#include "wm_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("wm-fuzz", 0);
    if (fd < 0) return 0;
    if (size && write(fd, data, size) != (ssize_t)size) { close(fd); return 0; }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    wm_error err;
    /* a small cap so hostile size claims are exercised without big buffers */
    wm_reader *r = wm_reader_open(path, 1 << 16, &err);
    if (r) {
        wm_msg msg;
        wm_strbuf b;
        wm_strbuf_init(&b);
        while (wm_reader_next(r, &msg, &err) == WM_OK) {
            wm_frame_view v;
            if (wm_msg_is(&msg, "frame") && wm_proto_frame_get(&msg, &v, &err) == WM_OK && v.size)
                b.len += v.data[v.size - 1] & 1;   /* touch the last pixel */
            wm_strbuf_reset(&b);
            wm_json_obj(&b, &msg.root, NULL, NULL);
        }
        wm_strbuf_free(&b);
        wm_reader_free(&r);
    }
    close(fd);
    return 0;
}
