/* wm_venc: frames into a video file through libavcodec/libavformat (the
 * encoding half of wm-mux; wm_vdec is the decoding half).
 *
 * The codec follows the file name's extension:
 *   .mp4 .mov  H.264 (libx264), yuv420p by default, CRF WM_VENC_DEFAULT_CRF
 *   .mkv       FFV1, lossless: rgb24 as bgr0, gray8 as gray
 *   .png       a PNG sequence (image2 muxer, one atomic file per frame,
 *              numbered from 0); the name must hold a frame number (%04d)
 *   .gif       GIF; gray8 exactly, rgb24 through a median-cut palette built
 *              for each frame (exact when a frame has at most 256 colours)
 *
 * Odd sizes: 4:2:0 needs even sides.  With WM_VENC_PIX_AUTO an odd-sized
 * H.264 file is coded yuv444p, which keeps the exact size; with
 * WM_VENC_PIX_YUV420P forced, the picture is padded to even sides by
 * duplicating its last column/row (the file is then one pixel wider or
 * taller, for players that only take 4:2:0).  Other codecs take any size.
 *
 * Timestamps: a frame's pts is given in seconds.  With a known frame rate
 * N/D the time base is 1/lcm(N, 1000): frames on the 1/fps grid and
 * irregular times in whole milliseconds both land exactly (others within
 * a tick).  Without a rate it is 1/1000 (GIF: always 1/100, what the
 * format stores).  Timestamps that would not increase are bumped by one
 * tick of the container, so every frame is kept.
 *
 * A single-file output is written to "PATH.tmp.PID" in the same directory
 * and renamed to PATH by wm_venc_finish; wm_venc_free without finish
 * removes the partial file.  A PNG sequence writes each image atomically,
 * so images already written stay.
 *
 * Ownership: the caller owns the wm_venc and frees it with wm_venc_free
 * (which sets the pointer to NULL); pixels passed to wm_venc_write_frame
 * are only read during the call.  Errors: WM_E_USAGE for an output name or
 * option that cannot work, WM_E_OUTPUT when the file cannot be written,
 * WM_E_SYSTEM for codec failures and memory. */
#ifndef WM_VENC_H
#define WM_VENC_H

#include <stddef.h>
#include <stdint.h>

#include "wm_error.h"
#include "wm_proto.h"

/* yuv420p at CRF 17 keeps real footage above 40 dB PSNR after a decode
 * round trip (43 dB on motion.mov at 160x120); 4:2:0 stays the default
 * because every player takes it.  Saturated synthetic edges lose most to
 * the chroma subsampling: yuv444p or the lossless .mkv suit them. */
#define WM_VENC_DEFAULT_CRF 17
#define WM_VENC_DEFAULT_PRESET "medium"

typedef enum wm_venc_codec {
    WM_VENC_H264 = 0,   /* .mp4 (mp4 muxer), .mov (mov muxer) */
    WM_VENC_FFV1,       /* .mkv */
    WM_VENC_PNG,        /* .png sequence */
    WM_VENC_GIF         /* .gif */
} wm_venc_codec;

typedef enum wm_venc_pix {
    WM_VENC_PIX_AUTO = 0,   /* yuv420p, or yuv444p for odd sizes */
    WM_VENC_PIX_YUV420P,
    WM_VENC_PIX_YUV444P
} wm_venc_pix;

typedef struct wm_venc_options {
    int crf;                /* H.264 constant rate factor 0..51; < 0: default */
    const char *preset;     /* x264 preset; NULL: WM_VENC_DEFAULT_PRESET */
    wm_venc_pix pix;        /* H.264 pixel format */
} wm_venc_options;

/* An output name as given on the command line.  A printf-style number
 * (%d, %03d; %% is a literal %) marks where the clip number goes; for PNG
 * the last number is the frame's and a first one, if present, the clip's. */
typedef struct wm_venc_target {
    char name[4096];
    wm_venc_codec codec;
    int per_clip;           /* the name holds a clip number */
} wm_venc_target;

/* Checks name and fills t.  WM_E_USAGE for an unknown extension or a
 * pattern that does not fit the codec. */
wm_status wm_venc_target_parse(wm_venc_target *t, const char *name, wm_error *err);

/* The file name for the clip numbered clip_number (ignored unless
 * per_clip), as wm_venc_open takes it. */
wm_status wm_venc_target_path(const wm_venc_target *t, int clip_number, char *out, size_t cap,
                              wm_error *err);

typedef struct wm_venc wm_venc;

/* Opens the encoder and the output for width x height frames of pixfmt;
 * the codec follows path's extension (a PNG path is an image2 pattern).
 * fps_num/fps_den is the clip's frame rate (0/0 when unknown).  opt may
 * be NULL for the defaults.  Nothing is written to path itself until
 * wm_venc_finish. */
wm_venc *wm_venc_open(const char *path, int width, int height, wm_pixfmt pixfmt,
                      int fps_num, int fps_den, const wm_venc_options *opt, wm_error *err);

/* Encodes one frame of the size and format given to open (rows packed,
 * width * channels bytes each) shown at pts seconds. */
wm_status wm_venc_write_frame(wm_venc *e, const uint8_t *pixels, double pts, wm_error *err);

/* Flushes the encoder (no frame is lost), writes the trailer and renames
 * the file to its final name.  Call it once; later writes fail. */
wm_status wm_venc_finish(wm_venc *e, wm_error *err);

/* Frames accepted so far. */
int64_t wm_venc_frames(const wm_venc *e);

/* The pixel format the codec was opened with (e.g. "yuv444p"). */
const char *wm_venc_pix_name(const wm_venc *e);

/* Frees e; an unfinished single-file output is removed. */
void wm_venc_free(wm_venc **e);

/* One rgb24 picture (rows packed) as a PNG file in memory, through
 * libavcodec's PNG encoder: *out (malloc'd, the caller frees it) holds
 * *len bytes.  For thumbnails in reports. */
wm_status wm_venc_png_memory(const uint8_t *rgb, int width, int height, uint8_t **out, size_t *len,
                             wm_error *err);

#endif
