/* wm_render and wm_synth checks (issue 4): visibility is what the pixels
 * say, pairs are identical before their violation frame and differ from
 * it on, labels agree with a drawing without balls, output is the same
 * for the same seed (and the same as on every other machine: GOLDEN). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wm_hash.h"
#include "wm_render.h"
#include "wm_synth.h"

static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
    printf(__VA_ARGS__); printf("\n"); } } while (0)

/* FNV-1a over everything a clip shows: pixels and objects. */
static uint64_t hash_clip(wm_synth *s, uint64_t h)
{
    const uint8_t *rgb;
    const wm_synth_object *objs;
    int n;
    const wm_synth_labels *l = wm_synth_get_labels(s);
    h = wm_fnv1a(h, l->id, strlen(l->id));
    h = wm_fnv1a(h, &l->violation_frame, sizeof l->violation_frame);
    while (wm_synth_next_frame(s, &rgb, &objs, &n)) {
        h = wm_fnv1a(h, rgb, 64 * 64 * 3);
        for (int i = 0; i < n; i++) {
            double v[3] = { objs[i].x, objs[i].y, objs[i].r };
            h = wm_fnv1a(h, v, sizeof v);
            h = wm_fnv1a(h, &objs[i].visible, sizeof objs[i].visible);
        }
    }
    return h;
}

static wm_synth_opts default_opts(uint64_t seed)
{
    return (wm_synth_opts){ seed, 64, 64, 25, 1, 32, 1, 3, 2.0, 0, 1 };
}

static void test_render_visibility(void)
{
    wm_error err = { 0 };
    wm_renderer *r = wm_renderer_new(48, 32, &err);
    CHECK(r != NULL, "renderer: %s", err.msg);
    if (!r) return;
    wm_look look = { 0 };
    for (int c = 0; c < 3; c++) {
        look.wall_top[c] = look.wall_bottom[c] = 128;
        look.floor_far[c] = look.floor_near[c] = 60;
    }
    look.floor_y = 26;
    look.light[2] = 1;
    look.noise_sigma = 3;
    wm_renderer_set_look(r, &look);
    uint8_t full[48 * 32 * 3], bare[48 * 32 * 3], again[48 * 32 * 3], vis[2];
    wm_render_disc discs[2] = { { 12, 12, 5, { 230, 40, 40 } }, { 36, 12, 5, { 40, 40, 230 } } };
    wm_render_rect screen = { 28, 2, 46, 24, { 90, 160, 90 }, { 60, 120, 60 }, WM_PATTERN_STRIPES, 6, 1 };
    wm_renderer_draw(r, discs, 2, &screen, 1, 7, full, vis, 0);
    CHECK(vis[0] == 1 && vis[1] == 0, "visibility %d %d, wanted 1 0 (the second ball is behind the screen)", vis[0], vis[1]);
    wm_renderer_draw(r, discs, 2, &screen, 1, 7, bare, NULL, 1);
    int differ_in = 0, differ_out = 0;
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 48; x++) {
            int d = memcmp(full + (y * 48 + x) * 3, bare + (y * 48 + x) * 3, 3) != 0;
            double dx = x + 0.5 - 12, dy = y + 0.5 - 12;
            if (dx * dx + dy * dy < 5.5 * 5.5) differ_in += d;
            else differ_out += d;
        }
    CHECK(differ_in > 60 && differ_out == 0, "ball pixels: %d differ inside, %d outside", differ_in, differ_out);
    wm_renderer_draw(r, discs, 2, &screen, 1, 7, again, NULL, 0);
    CHECK(memcmp(full, again, sizeof full) == 0, "the same frame drawn twice differs");
    wm_renderer_draw(r, discs, 2, &screen, 1, 8, again, NULL, 0);
    CHECK(memcmp(full, again, sizeof full) != 0, "another noise seed gave the same frame");
    screen.x0 = 35;                               /* half the second ball shows */
    wm_renderer_draw(r, discs, 2, &screen, 1, 7, full, vis, 0);
    CHECK(vis[1] == 1, "a half-hidden ball should be visible");
    wm_render_disc off = { -20, 10, 4, { 255, 255, 0 } };
    wm_renderer_draw(r, &off, 1, NULL, 0, 7, full, vis, 0);
    CHECK(vis[0] == 0, "a ball off screen should not be visible");
    wm_renderer_free(&r);
    CHECK(r == NULL, "free should clear the pointer");
    printf("ok - a ball is visible exactly when it changes pixels\n");
}

/* Every pair: identical before violation_frame, different from it on, and
 * the labels match. */
static void test_pairs(void)
{
    wm_error err = { 0 };
    int checked = 0;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        wm_synth_opts o = default_opts(seed);
        wm_synth *a = wm_synth_new(&o, &err), *b = wm_synth_new(&o, &err);
        CHECK(a && b, "synth: %s", err.msg);
        if (!a || !b) return;
        for (int c = 0; c < WM_SYNTH_CATEGORIES; c++)
            for (int k = 0; k < 2; k++) {
                wm_status st = wm_synth_begin_pair(a, c, k, 0, &err);
                if (st == WM_OK) st = wm_synth_begin_pair(b, c, k, 1, &err);
                CHECK(st == WM_OK, "%s pair %d: %s", wm_synth_category_name(c), k, err.msg);
                if (st != WM_OK) continue;
                const wm_synth_labels *la = wm_synth_get_labels(a), *lb = wm_synth_get_labels(b);
                int vf = lb->violation_frame, first = -1, later_same = 0;
                CHECK(la->possible && !lb->possible && la->violation_frame == -1 && vf >= 1 && vf < 32 &&
                      la->diverge_frame == vf && la->pair == k && lb->category == c && !strcmp(la->variant, lb->variant),
                      "labels of %s", lb->id);
                const uint8_t *pa, *pb;
                const wm_synth_object *oa, *ob;
                int na, nb;
                for (int f = 0; wm_synth_next_frame(a, &pa, &oa, &na); f++) {
                    CHECK(wm_synth_next_frame(b, &pb, &ob, &nb), "%s ends early", lb->id);
                    int differ = memcmp(pa, pb, 64 * 64 * 3) != 0;
                    if (differ && first < 0) first = f;
                    if (!differ && first >= 0) later_same++;
                }
                CHECK(first == vf && later_same == 0, "%s: violation_frame %d, first difference %d, %d equal frames after",
                      lb->id, vf, first, later_same);
                checked++;
            }
        wm_synth_free(&a);
        wm_synth_free(&b);
    }
    printf("ok - %d pairs (every category, seeds 1-3) are identical before their violation frame and differ from it on\n",
           checked);
}

/* Labels against pixels: a visible ball differs from the drawing without
 * balls somewhere in its disc; a hidden one nowhere; and nothing else
 * differs. */
static void test_labels_match_pixels(void)
{
    wm_error err = { 0 };
    wm_synth_opts o = default_opts(9);
    wm_synth_opts ob = o;
    ob.background_only = 1;
    wm_synth *full = wm_synth_new(&o, &err), *bare = wm_synth_new(&ob, &err);
    CHECK(full && bare, "synth: %s", err.msg);
    if (!full || !bare) return;
    int frames = 0, visible = 0, hidden = 0;
    for (int clip = 0; clip < 12; clip++) {
        wm_status st = clip < 6 ? wm_synth_begin_clip(full, clip, &err) : wm_synth_begin_pair(full, clip - 6, 0, 1, &err);
        if (st == WM_OK) st = clip < 6 ? wm_synth_begin_clip(bare, clip, &err) : wm_synth_begin_pair(bare, clip - 6, 0, 1, &err);
        CHECK(st == WM_OK, "clip %d: %s", clip, err.msg);
        if (st != WM_OK) continue;
        const uint8_t *pf, *pb;
        const wm_synth_object *of, *obj;
        int nf, nb;
        while (wm_synth_next_frame(full, &pf, &of, &nf) && wm_synth_next_frame(bare, &pb, &obj, &nb)) {
            frames++;
            CHECK(nf == nb, "object lists differ");
            uint8_t near_visible[64 * 64] = { 0 };
            for (int i = 0; i < nf; i++) {
                int seen = 0;
                for (int y = 0; y < 64; y++)
                    for (int x = 0; x < 64; x++) {
                        double dx = x + 0.5 - of[i].x, dy = y + 0.5 - of[i].y;
                        if (dx * dx + dy * dy >= (of[i].r + 0.5) * (of[i].r + 0.5)) continue;
                        seen |= memcmp(pf + (y * 64 + x) * 3, pb + (y * 64 + x) * 3, 3) != 0;
                        if (of[i].visible) near_visible[y * 64 + x] = 1;
                    }
                CHECK(seen == of[i].visible, "%s: ball %d visible=%d but its pixels %s",
                      wm_synth_get_labels(full)->id, of[i].id, of[i].visible, seen ? "differ" : "do not differ");
                visible += of[i].visible;
                hidden += !of[i].visible;
            }
            int stray = 0;
            for (int p = 0; p < 64 * 64; p++)
                stray += !near_visible[p] && memcmp(pf + p * 3, pb + p * 3, 3) != 0;
            CHECK(stray == 0, "%s: %d pixels differ away from every visible ball", wm_synth_get_labels(full)->id, stray);
            if (failures > 10) return;
        }
    }
    CHECK(hidden > 0 && visible > 0, "the clips should show both visible and hidden balls (%d, %d)", visible, hidden);
    wm_synth_free(&full);
    wm_synth_free(&bare);
    printf("ok - labels agree with the pixels in %d frames (%d visible, %d hidden balls)\n", frames, visible, hidden);
}

/* The same seed gives the same clips, another seed other clips; and the
 * bytes are those every other machine makes (update GOLDEN only when the
 * generator, or the wm_rng it draws from, is changed on purpose, and say
 * so in the commit). */
#define GOLDEN 0x08ee065dda00d375ULL
static void test_determinism(void)
{
    wm_error err = { 0 };
    uint64_t h[3];
    for (int run = 0; run < 3; run++) {
        wm_synth_opts o = default_opts(run == 2 ? 2 : 1);
        wm_synth *s = wm_synth_new(&o, &err);
        CHECK(s != NULL, "synth: %s", err.msg);
        if (!s) return;
        h[run] = WM_FNV1A_SEED;
        for (int n = 0; n < 4; n++) {
            wm_synth_begin_clip(s, n, &err);
            h[run] = hash_clip(s, h[run]);
        }
        for (int c = 0; c < WM_SYNTH_CATEGORIES; c++)
            for (int imp = 0; imp < 2; imp++) {
                if (wm_synth_begin_pair(s, c, 0, imp, &err) == WM_OK) h[run] = hash_clip(s, h[run]);
            }
        wm_synth_free(&s);
    }
    CHECK(h[0] == h[1], "seed 1 twice: %016llx and %016llx", (unsigned long long)h[0], (unsigned long long)h[1]);
    CHECK(h[0] != h[2], "seeds 1 and 2 made the same clips");
    CHECK(GOLDEN == 0 || h[0] == GOLDEN, "seed 1 made %016llx; every machine should make %016llx",
          (unsigned long long)h[0], (unsigned long long)GOLDEN);
    printf("ok - same seed, same bytes (%016llx); another seed, other clips\n", (unsigned long long)h[0]);
}

static void test_bad_options(void)
{
    wm_error err = { 0 };
    wm_synth_opts o = default_opts(1);
    o.frames = 0;
    CHECK(!wm_synth_new(&o, &err) && err.code == WM_E_USAGE && strstr(err.msg, "--frames"), "frames 0: %s", err.msg);
    o = default_opts(1);
    o.width = -4;
    CHECK(!wm_synth_new(&o, &err) && err.code == WM_E_USAGE && strstr(err.msg, "--size"), "width -4: %s", err.msg);
    o = default_opts(1);
    o.frames = 8;
    CHECK(wm_synth_check_pair_opts(&o, &err) == WM_E_USAGE && strstr(err.msg, "--frames"), "pairs of 8 frames: %s", err.msg);
    unsigned mask = 0;
    CHECK(wm_synth_parse_categories("category", "gravity,bogus", &mask, &err) == WM_E_USAGE &&
          strstr(err.msg, "--category") && strstr(err.msg, "'bogus'"), "unknown category: %s", err.msg);
    CHECK(wm_synth_parse_categories("category", "gravity,inertia", &mask, &err) == WM_OK &&
          mask == (1u << WM_SYNTH_GRAVITY | 1u << WM_SYNTH_INERTIA), "category list gave mask %x", mask);
    int lo = 0, hi = 0;
    CHECK(wm_synth_parse_range("balls", "2-5", 1, 8, &lo, &hi, &err) == WM_OK && lo == 2 && hi == 5, "balls 2-5");
    CHECK(wm_synth_parse_range("balls", "4", 1, 8, &lo, &hi, &err) == WM_OK && lo == 4 && hi == 4, "balls 4");
    CHECK(wm_synth_parse_range("balls", "5-2", 1, 8, &lo, &hi, &err) == WM_E_USAGE && strstr(err.msg, "--balls"), "balls 5-2");
    CHECK(wm_synth_parse_range("balls", "0-9", 1, 8, &lo, &hi, &err) == WM_E_USAGE, "balls 0-9");
    CHECK(wm_synth_parse_range("balls", "x", 1, 8, &lo, &hi, &err) == WM_E_USAGE, "balls x");
    printf("ok - bad options are refused with the option's name\n");
}

int main(void)
{
    test_render_visibility();
    test_bad_options();
    test_determinism();
    test_pairs();
    test_labels_match_pixels();
    if (failures) printf("%d failure(s)\n", failures);
    return failures ? 1 : 0;
}
