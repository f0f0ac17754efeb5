/* wm_vdec: one video file decoded into RGB or gray frames of one output
 * size, optionally resampled to a constant frame rate.
 *
 * FFmpeg does the work: libavformat demuxes the best video stream,
 * libavcodec decodes it with frame and slice threads (send/receive, and
 * drained at the end of the file so no delayed frame is lost), libswscale
 * scales and converts with the colorspace details the ffmpeg CLI's scale
 * filter uses, so `--fit stretch` gives the bytes of
 * `ffmpeg -vf scale=W:H:flags=F -pix_fmt rgb24` for the same algorithm.
 * The display matrix is honoured: frames come out upright and the reported
 * size is the size after rotation.
 *
 * Ownership: wm_vdec_open returns a decoder the caller frees with
 * wm_vdec_free (which sets the pointer to NULL).  A frame returned by
 * wm_vdec_next borrows the decoder's output buffer: it is valid until the
 * next call.  Errors: WM_E_INPUT (the message names the file and the frame
 * or byte offset), WM_E_INTERRUPTED (SIGINT/SIGTERM while FFmpeg waited
 * for input), WM_E_SYSTEM (out of memory). */
#ifndef WM_VDEC_H
#define WM_VDEC_H

#include <stddef.h>
#include <stdint.h>

#include "wm_error.h"
#include "wm_proto.h"

/* Largest source or output side accepted, so a hostile header cannot make
 * us allocate without bound. */
#define WM_VDEC_MAX_SIDE 16384

typedef enum wm_vdec_fit {
    WM_VDEC_FIT_CROP = 0,   /* scale to cover the output, crop the centre */
    WM_VDEC_FIT_PAD,        /* scale to fit inside, black bars */
    WM_VDEC_FIT_STRETCH     /* scale to the output, aspect ignored */
} wm_vdec_fit;

/* Names of the fit modes and scalers, NULL-terminated, in enum / index
 * order (for option tables). */
extern const char *const wm_vdec_fit_names[];
extern const char *const wm_vdec_scaler_names[];
/* The default scaler: bicubic, the ffmpeg CLI's default for -vf scale. */
#define WM_VDEC_SCALER_DEFAULT 2

typedef struct wm_vdec_opts {
    int width, height;       /* output size after rotation; 0x0: the source's; one side -n: from
                                the other and the source's aspect ratio as shown (its sample
                                aspect ratio counted), rounded to a multiple of n (FFmpeg's scale) */
    wm_vdec_fit fit;
    int fps_num, fps_den;    /* resample to this rate; 0/0: every decoded frame */
    double near_fps;         /* with fps 0/0: keep every k-th frame, k the whole number that
                                brings the source's rate nearest this (50 or 60 frames/s at 25:
                                every 2nd); 0: off */
    double start;            /* seconds from the stream start; earlier frames dropped */
    int64_t max_frames;      /* frames per clip; 0: no limit */
    double duration;         /* seconds per clip from its first frame; 0: no limit */
    wm_pixfmt format;
    int scaler;              /* index into wm_vdec_scaler_names */
    int threads;             /* decoder threads; 0: one per core */
    size_t max_bytes;        /* largest output frame in bytes; 0: no cap */
} wm_vdec_opts;

/* What a decoder produces, known once it is open. */
typedef struct wm_vdec_info {
    int width, height;       /* output frames, after rotation */
    int fps_num, fps_den;    /* output rate; 0/0 when unknown */
    int src_width, src_height; /* decoded size, before rotation */
    int rotation;            /* clockwise turn applied: 0, 90, 180 or 270 */
    const char *codec;       /* decoder name */
} wm_vdec_info;

typedef struct wm_vdec_frame {
    const uint8_t *data;     /* width * height * channels bytes, row-major, no padding */
    size_t size;
    int width, height;
    wm_pixfmt format;
    int64_t index;           /* 0-based within the clip */
    double pts;              /* seconds from the stream's start time */
} wm_vdec_frame;

typedef struct wm_vdec wm_vdec;

/* Defaults: source size, crop, every frame, rgb24, bicubic, auto threads. */
void wm_vdec_opts_init(wm_vdec_opts *o);

/* Opens path ("-" is stdin) and its best video stream.  NULL on failure
 * with err set (WM_E_INPUT naming the file, or WM_E_SYSTEM). */
wm_vdec *wm_vdec_open(const char *path, const wm_vdec_opts *opts, wm_error *err);

const wm_vdec_info *wm_vdec_get_info(const wm_vdec *d);

/* Produces the next output frame into *f.  Returns WM_OK, WM_EOF when the
 * clip is complete (end of file, --frames or --duration reached), or an
 * error; after an error the frames already returned stay valid output. */
wm_status wm_vdec_next(wm_vdec *d, wm_vdec_frame *f, wm_error *err);

/* Frames returned so far. */
int64_t wm_vdec_count(const wm_vdec *d);

void wm_vdec_free(wm_vdec **d);

#endif
