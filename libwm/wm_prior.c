#include "wm_prior.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BALLS WM_OBJECTS_MAX_TRACKS
#define BALL_THRESHOLD 0.5f

struct wm_prior {
    wm_tokenizer *tk;
    wm_detector *det;
    int lanes, h, w, C, H, W;
    wm_objects **scene;          /* one per lane */
    float *y;                    /* [lanes, H, W, 3] decoded, network values */
    uint8_t *pix;                /* [lanes, H, W, 3] the same as pixels */
    float *frame;                /* [lanes, H, W, 3] the pixels as floats */
    float *drawn;                /* [lanes, H, W, 3] the predicted frames */
    float *x;                    /* [2 lanes, H, W, 3] to encode: drawn, then decoded */
    float *enc;                  /* [2 lanes, h, w, C] */
    float *maps;                 /* [lanes, h, w, WM_DETECT_MAPS] */
};

wm_prior *wm_prior_new(wm_tokenizer *tk, wm_detector *det, int lanes, int h, int w, double fps,
                       const wm_objects_config *cfg, wm_error *err)
{
    const int C = wm_tokenizer_get_config(tk)->latent_channels;
    if (wm_detector_get_config(det)->latent_channels != C) {
        wm_error_set(err, WM_E_INPUT, "the ball detector reads %d latent channels, the tokenizer writes %d",
                     wm_detector_get_config(det)->latent_channels, C);
        return NULL;
    }
    if (lanes < 1 || h < 1 || w < 1) {
        wm_error_set(err, WM_E_USAGE, "prior: %d lanes of %dx%d", lanes, w, h);
        return NULL;
    }
    wm_prior *p = calloc(1, sizeof *p);
    if (!p) {
        wm_error_set(err, WM_E_SYSTEM, "out of memory");
        return NULL;
    }
    p->tk = tk;
    p->det = det;
    p->lanes = lanes;
    p->h = h;
    p->w = w;
    p->C = C;
    p->H = h * WM_TOKENIZER_PATCH;
    p->W = w * WM_TOKENIZER_PATCH;
    const size_t px = (size_t)lanes * p->H * p->W * 3, cells = (size_t)lanes * h * w;
    p->scene = calloc((size_t)lanes, sizeof(wm_objects *));
    p->y = malloc(px * sizeof(float));
    p->pix = malloc(px);
    p->frame = malloc(px * sizeof(float));
    p->drawn = malloc(px * sizeof(float));
    p->x = malloc(2 * px * sizeof(float));
    p->enc = malloc(2 * cells * C * sizeof(float));
    p->maps = malloc(cells * WM_DETECT_MAPS * sizeof(float));
    if (!p->scene || !p->y || !p->pix || !p->frame || !p->drawn || !p->x || !p->enc || !p->maps) {
        wm_prior_free(&p);
        wm_error_set(err, WM_E_SYSTEM, "out of memory for the object prior of %d lanes", lanes);
        return NULL;
    }
    const wm_objects_config dflt = wm_objects_default_config(p->W, p->H, fps);
    for (int l = 0; l < lanes; l++)
        if (!(p->scene[l] = wm_objects_new(cfg ? cfg : &dflt, err))) {
            wm_prior_free(&p);
            return NULL;
        }
    return p;
}

void wm_prior_free(wm_prior **pp)
{
    wm_prior *p = *pp;
    if (!p) return;
    for (int l = 0; p->scene && l < p->lanes; l++) wm_objects_free(&p->scene[l]);
    free(p->scene);
    free(p->y);
    free(p->pix);
    free(p->frame);
    free(p->drawn);
    free(p->x);
    free(p->enc);
    free(p->maps);
    free(p);
    *pp = NULL;
}

void wm_prior_reset(wm_prior *p, int lane)
{
    for (int l = 0; l < p->lanes; l++)
        if (lane < 0 || l == lane) wm_objects_reset(p->scene[l]);
}

const float *wm_prior_drawn(const wm_prior *p) { return p->drawn; }
const wm_objects *wm_prior_scene(const wm_prior *p, int lane) { return p->scene[lane]; }

wm_status wm_prior_step(wm_prior *p, int n, const float *z, float *prior, wm_error *err)
{
    if (n < 1 || n > p->lanes) return wm_error_set(err, WM_E_USAGE, "prior: %d lanes of %d", n, p->lanes);
    const size_t fpx = (size_t)p->H * p->W, cells = (size_t)p->h * p->w, lat = cells * p->C;
    wm_status st = wm_tokenizer_decode(p->tk, p->y, z, n, p->h, p->w, err);
    if (!st) st = wm_detector_forward(p->det, z, n, p->h, p->w, p->maps, err);
    if (st) return st;
    wm_tokenizer_output_to_pixels(p->pix, p->y, (size_t)n * fpx);
    for (size_t k = 0; k < (size_t)n * fpx * 3; k++) p->frame[k] = p->pix[k];
    /* the decoded frames as the encoder reads them, after the drawn ones (p->pix is reused for those) */
    wm_tokenizer_pixels_to_input(p->x + (size_t)n * fpx * 3, p->pix, (size_t)n * fpx, 3);
    for (int l = 0; l < n; l++) {
        wm_ball balls[MAX_BALLS];
        int nb = wm_detector_balls(p->maps + (size_t)l * cells * WM_DETECT_MAPS, p->h, p->w, WM_TOKENIZER_PATCH,
                                   BALL_THRESHOLD, balls, MAX_BALLS);
        if (nb > MAX_BALLS) nb = MAX_BALLS;
        float *drawn = p->drawn + (size_t)l * fpx * 3;
        wm_objects_step(p->scene[l], p->frame + (size_t)l * fpx * 3, balls, nb, drawn);
        uint8_t *q = p->pix + (size_t)l * fpx * 3;   /* the drawn frame as 8-bit pixels, as a stream carries it */
        for (size_t k = 0; k < fpx * 3; k++) q[k] = (uint8_t)lrintf(drawn[k]);
    }
    /* encode the drawn frames, then the decoded ones, in one batch */
    wm_tokenizer_pixels_to_input(p->x, p->pix, (size_t)n * fpx, 3);
    if ((st = wm_tokenizer_encode(p->tk, p->enc, p->x, 2 * n, p->H, p->W, err))) return st;
    const float *drawn_z = p->enc, *decoded_z = p->enc + (size_t)n * lat;
    for (size_t k = 0; k < (size_t)n * lat; k++) prior[k] = z[k] + drawn_z[k] - decoded_z[k];
    return WM_OK;
}
