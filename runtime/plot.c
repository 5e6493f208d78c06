/* plot.c - a training metrics file drawn as a self-contained SVG.
 *
 * Needs: the JSON lines train --metrics writes, one object per epoch with
 * "epoch" and any of "train_loss", "train_acc", "test_loss", "test_acc"
 * (numbers, or null for a non-finite value, which is left out).
 * Provides rt_plot: two charts side by side, loss and accuracy (in %)
 * against the epoch, train in blue and test in orange, each line with a
 * dot per epoch.  A file that several runs appended to (a resumed run)
 * keeps, per epoch, the last line.  Plain SVG 1.1, no scripts, no fonts
 * beyond the generic sans-serif, so any browser shows it.
 *
 *   {"epoch":1,"train_loss":0.9,...}\n{"epoch":2,...}  ->  curves.svg
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

/* More epochs than this is not a training log. */
#define MAX_EPOCHS 100000

enum { S_TRAIN_LOSS, S_TEST_LOSS, S_TRAIN_ACC, S_TEST_ACC, NSERIES };
static const char *const series_key[NSERIES] = {"train_loss", "test_loss", "train_acc",
                                                "test_acc"};

typedef struct {
    long epochs;               /* the largest epoch seen */
    double *v[NSERIES];        /* [epochs + 1], NAN where absent */
} Curves;

static void curves_free(Curves *c)
{
    for (int i = 0; i < NSERIES; i++)
        free(c->v[i]);
}

static bool grow(Curves *c, long epoch)
{
    for (int i = 0; i < NSERIES; i++) {
        double *nv = rt_realloc(c->v[i], (size_t)(epoch + 1) * sizeof *nv);
        if (!nv)
            return false;
        for (long k = c->epochs + 1; k <= epoch; k++)
            nv[k] = NAN;
        c->v[i] = nv;
    }
    c->epochs = epoch;
    return true;
}

static bool read_line(Curves *c, const char *path, const char *text, size_t len, long line,
                      RtErr *e)
{
    JsonVal v;
    RtErr je;
    if (!rt_json_parse(&v, text, len, &je))
        return rt_fail(e, path, "line %ld: %s", line, je.msg);
    uint64_t epoch;
    const JsonVal *ep = v.kind == JSON_OBJ ? rt_json_get(&v, "epoch") : NULL;
    bool ok = ep && rt_json_u64(ep, &epoch) && epoch >= 1 && epoch <= MAX_EPOCHS;
    if (!ok)
        rt_fail(e, path, "line %ld: expected an object with \"epoch\" from 1 to %d", line,
                MAX_EPOCHS);
    if (ok && (long)epoch > c->epochs && !grow(c, (long)epoch))
        ok = rt_fail(e, path, "out of memory");
    for (int i = 0; ok && i < NSERIES; i++) {
        const JsonVal *x = rt_json_get(&v, series_key[i]);
        if (x && x->kind == JSON_NUM)
            c->v[i][epoch] = strtod(x->s, NULL);
        else if (x && x->kind != JSON_NULL)
            ok = rt_fail(e, path, "line %ld: \"%s\" is not a number", line, series_key[i]);
        else
            c->v[i][epoch] = NAN;
    }
    rt_json_free(&v);
    return ok;
}

static bool read_curves(Curves *c, const char *path, RtErr *e)
{
    unsigned char *buf;
    size_t len;
    if (!rt_read_file(path, &buf, &len, e))
        return false;
    bool ok = true;
    long line = 0;
    for (size_t at = 0; ok && at < len;) {
        const char *s = (const char *)buf + at;
        const char *nl = memchr(s, '\n', len - at);
        size_t n = nl ? (size_t)(nl - s) : len - at;
        line++;
        if (n > 0)
            ok = read_line(c, path, s, n, line, e);
        at += n + 1;
    }
    free(buf);
    if (ok && c->epochs == 0)
        ok = rt_fail(e, path, "no epochs in the metrics file");
    return ok;
}

/* ---- drawing ------------------------------------------------------------ */

enum { CHART_W = 440, CHART_H = 300, LEFT = 56, RIGHT = 16, TOP = 34, BOTTOM = 44 };

typedef struct {
    FILE *f;
    int x0;                    /* the chart's left edge in the picture */
    double lo, hi;             /* the value axis */
    long epochs;
} Chart;

static double px(const Chart *ch, double epoch)
{
    double span = ch->epochs > 1 ? (double)(ch->epochs - 1) : 1;
    return ch->x0 + LEFT + (epoch - 1) / span * (CHART_W - LEFT - RIGHT);
}

static double py(const Chart *ch, double v)
{
    return TOP + (ch->hi - v) / (ch->hi - ch->lo) * (CHART_H - TOP - BOTTOM);
}

/* A "nice" step (1, 2 or 5 times a power of ten) giving about 5 ticks. */
static double tick_step(double span)
{
    double raw = span / 5, p = pow(10, floor(log10(raw)));
    return raw / p < 1.5 ? p : raw / p < 3.5 ? 2 * p : raw / p < 7.5 ? 5 * p : 10 * p;
}

static void axes(Chart *ch, const char *title, const char *unit)
{
    FILE *f = ch->f;
    int l = ch->x0 + LEFT, r = ch->x0 + CHART_W - RIGHT, b = CHART_H - BOTTOM;
    fprintf(f, "<text x=\"%d\" y=\"20\" font-size=\"14\" text-anchor=\"middle\">%s</text>\n",
            ch->x0 + CHART_W / 2, title);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
            "stroke=\"#888\"/>\n", l, TOP, r - l, b - TOP);
    double step = tick_step(ch->hi - ch->lo);
    for (double v = ceil(ch->lo / step) * step; v <= ch->hi + step * 1e-9; v += step) {
        double y = py(ch, v);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", l, y,
                r, y);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%g%s</text>\n",
                l - 4, y + 4, fabs(v) < step * 1e-9 ? 0 : v, unit);
    }
    long estep = (long)ceil(tick_step((double)(ch->epochs > 1 ? ch->epochs - 1 : 1)));
    estep = estep < 1 ? 1 : estep;
    for (long k = 1; k <= ch->epochs; k += estep)
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%ld</text>\n",
                px(ch, (double)k), b + 16, k);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">epoch</text>\n",
            (l + r) / 2, b + 34);
}

static void line(const Chart *ch, const double *v, double scale, const char *color)
{
    FILE *f = ch->f;
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", color);
    for (long k = 1; k <= ch->epochs; k++)
        if (isfinite(v[k]))
            fprintf(f, "%.1f,%.1f ", px(ch, (double)k), py(ch, v[k] * scale));
    fprintf(f, "\"/>\n");
    for (long k = 1; k <= ch->epochs; k++)
        if (isfinite(v[k]))
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n",
                    px(ch, (double)k), py(ch, v[k] * scale), color);
}

static void legend(const Chart *ch)
{
    static const char *const name[] = {"train", "test"}, *const color[] = {"#1f77b4",
                                                                            "#ff7f0e"};
    for (int i = 0; i < 2; i++) {
        int x = ch->x0 + CHART_W - RIGHT - 110 + 56 * i;
        fprintf(ch->f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"3\" fill=\"%s\"/>\n", x,
                TOP - 10, color[i]);
        fprintf(ch->f, "<text x=\"%d\" y=\"%d\" font-size=\"11\">%s</text>\n", x + 16, TOP - 6,
                name[i]);
    }
}

/* One chart of the series a and b (times scale), its axis from lo (or the
 * data's minimum when lo is NAN) to the data's maximum. */
static void chart(FILE *f, int x0, const Curves *c, int a, int b, double scale, double lo,
                  const char *title, const char *unit)
{
    Chart ch = {f, x0, INFINITY, -INFINITY, c->epochs};
    for (long k = 1; k <= c->epochs; k++)
        for (int s = 0; s < 2; s++) {
            double v = c->v[s ? b : a][k] * scale;
            if (isfinite(v)) {
                ch.lo = v < ch.lo ? v : ch.lo;
                ch.hi = v > ch.hi ? v : ch.hi;
            }
        }
    if (!isfinite(ch.lo)) {
        ch.lo = 0;
        ch.hi = 1;
    }
    if (!isnan(lo))
        ch.lo = lo < ch.lo ? lo : ch.lo;
    if (ch.hi - ch.lo < 1e-9)
        ch.hi = ch.lo + (ch.lo != 0 ? fabs(ch.lo) * 0.1 : 1);
    double step = tick_step(ch.hi - ch.lo);
    ch.lo = floor(ch.lo / step) * step;
    ch.hi = ceil(ch.hi / step) * step;
    axes(&ch, title, unit);
    line(&ch, c->v[a], scale, "#1f77b4");
    line(&ch, c->v[b], scale, "#ff7f0e");
    legend(&ch);
}

static void escape_xml(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
}

bool rt_plot(const char *metrics, const char *svg, const char *title, RtErr *e)
{
    Curves c = {0};
    if (!read_curves(&c, metrics, e)) {
        curves_free(&c);
        return false;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        curves_free(&c);
        return rt_fail(e, svg, "out of memory");
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
            "height=\"%d\" font-family=\"sans-serif\">\n<title>", 2 * CHART_W, CHART_H);
    escape_xml(f, title);
    fprintf(f, ": training curves</title>\n<rect width=\"100%%\" height=\"100%%\" "
            "fill=\"white\"/>\n");
    chart(f, 0, &c, S_TRAIN_LOSS, S_TEST_LOSS, 1, 0, "loss", "");
    chart(f, CHART_W, &c, S_TRAIN_ACC, S_TEST_ACC, 100, NAN, "accuracy", "%");
    fprintf(f, "</svg>\n");
    curves_free(&c);
    bool ok = fclose(f) == 0;
    ok = ok ? rt_write_file(svg, text, len, e) : rt_fail(e, svg, "out of memory");
    free(text);
    return ok;
}
