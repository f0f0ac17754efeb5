/* wm_report: score JSON Lines (one object per clip, as printed by
 * `wm-score-coherence --json`) into one self-contained HTML page.
 *
 * The page has a summary (clips, failures, mean plausibility, and for
 * wm-synth labels the means of possible and impossible clips and how many
 * pairs rank the impossible clip as less plausible), a text filter box, and
 * one table row group per clip: failed clips first, then the least
 * plausible first, then clips without a plausibility.  Each shows the
 * scores, the labels, the surprise curve (inline SVG, peak and violation
 * frame marked) and the thumbnail strip.  Everything from the input is
 * HTML-escaped; the page loads nothing from the network.
 *
 * Fields are checked against the contract as they are read: a known field
 * of the wrong type (plausibility "high", thumbs that are not a base64
 * data:image URI) is bad input, named by file and line.  Unknown fields are
 * shown as labels.
 *
 * Ownership: wm_report_new returns a report the caller frees with
 * wm_report_free (which sets the pointer to NULL); it keeps its own copy
 * of every row.  The caller owns the FILE and the output buffer. */
#ifndef WM_REPORT_H
#define WM_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "wm_error.h"
#include "wm_json.h"

/* Longest input line accepted (a row with its thumbnails). */
#define WM_REPORT_MAX_LINE ((size_t)64 << 20)

typedef struct wm_report wm_report;

/* title: the page's heading (copied; NULL gives "wm report"). */
wm_report *wm_report_new(const char *title, wm_error *err);
void wm_report_free(wm_report **r);

/* Adds the clip on one input line (without its newline; a blank line is
 * skipped).  name and lineno name the line in messages ("name:lineno: ...").
 * Returns WM_E_INPUT for malformed JSON or a field of the wrong type. */
wm_status wm_report_add_line(wm_report *r, const char *line, size_t n, const char *name, long lineno,
                             wm_error *err);

/* Adds every line of f, read to its end; name is used in messages.  A line
 * longer than WM_REPORT_MAX_LINE is bad input. */
wm_status wm_report_read(wm_report *r, FILE *f, const char *name, wm_error *err);

/* Number of clips added so far. */
size_t wm_report_count(const wm_report *r);

/* Appends the whole page to html.  WM_E_SYSTEM when memory runs out. */
wm_status wm_report_render(const wm_report *r, wm_strbuf *html, wm_error *err);

#endif
