/* batch.c - stored samples into the model's input: conversion,
 * augmentation and normalisation, one sample at a time.
 *
 * Needs: a split (bytes or floats, [c, h, w] per sample) and the view of
 * the model's input (RtView).  Provides rt_gather, which writes a batch
 * [n, v->c, v->h, v->w] of floats, and the bilinear resampler it shares
 * with the image-folder loader.  For output pixel (oc, y, x):
 *   channel   sc = oc, or 0 when the split has one channel (grey -> RGB)
 *   crop      (y, x) -> (y + dy - pad, x + dx - pad), zero outside
 *   flip      x -> w - 1 - x, applied after the crop (as torchvision's
 *             RandomCrop then RandomHorizontalFlip)
 *   resize    bilinear from [h, w] to [v->h, v->w] when they differ,
 *             before the crop
 *   value     byte / 255 or the float, then (value - mean) / std
 * The random numbers, per sample in batch order: dy = below(2 pad + 1),
 * dx = below(2 pad + 1) when pad > 0, then flip = below(2) when flip is
 * on.  Padding is 0 before normalisation, as with torchvision's
 * RandomCrop(padding=pad) before Normalize.
 *
 *   [3, 32, 32] image, pad 4, dy = 0, dx = 8: output row 0 is zero, the
 *   rest is the image shifted up-left by 4 rows and right by 4 columns.
 */
#include "rt.h"

void rt_aug_seed(RtRng *r, uint64_t seed, long epoch)
{
    rt_rng_seed(r, seed, RT_STREAM_AUG + (uint64_t)epoch);
}

/* Where output index o of `out` samples reads from `in` (PyTorch's
 * area_pixel_compute_source_index, align_corners=False, clamped at 0). */
static void source_index(int o, int in, int out, int *i0, int *i1, float *frac)
{
    float s = ((float)o + 0.5f) * ((float)in / (float)out) - 0.5f;
    if (s < 0)
        s = 0;
    *i0 = (int)s;
    if (*i0 > in - 1)
        *i0 = in - 1;
    *i1 = *i0 + 1 < in ? *i0 + 1 : in - 1;
    *frac = s - (float)*i0;
}

void rt_resize_bilinear(const float *src, int h, int w, float *dst, int oh, int ow)
{
    for (int y = 0; y < oh; y++) {
        int y0, y1;
        float ly;
        source_index(y, h, oh, &y0, &y1, &ly);
        for (int x = 0; x < ow; x++) {
            int x0, x1;
            float lx;
            source_index(x, w, ow, &x0, &x1, &lx);
            float top = src[y0 * w + x0] * (1 - lx) + src[y0 * w + x1] * lx;
            float bot = src[y1 * w + x0] * (1 - lx) + src[y1 * w + x1] * lx;
            dst[y * ow + x] = top * (1 - ly) + bot * ly;
        }
    }
}

/* Stored value (c, y, x) of the sample starting at `base`, as a float. */
static float stored(const RtSplit *s, size_t base, int c, int y, int x)
{
    size_t k = base + ((size_t)c * (size_t)s->h + (size_t)y) * (size_t)s->w + (size_t)x;
    return s->x8 ? (float)s->x8[k] / 255.0f : s->xf[k];
}

/* Value (c, y, x) of the sample resized to the view, without augmentation. */
static float resized(const RtSplit *s, const RtView *v, size_t base, int c, int y, int x)
{
    if (s->h == v->h && s->w == v->w)
        return stored(s, base, c, y, x);
    int y0, y1, x0, x1;
    float ly, lx;
    source_index(y, s->h, v->h, &y0, &y1, &ly);
    source_index(x, s->w, v->w, &x0, &x1, &lx);
    float top = stored(s, base, c, y0, x0) * (1 - lx) + stored(s, base, c, y0, x1) * lx;
    float bot = stored(s, base, c, y1, x0) * (1 - lx) + stored(s, base, c, y1, x1) * lx;
    return top * (1 - ly) + bot * ly;
}

/* The common case: no crop, flip or resize, the stored channels: one pass
 * converting the sample, with the same values as the general path. */
static bool gather_plain(float *out, const RtSplit *s, const RtView *v, size_t base, RtRng *aug)
{
    if ((aug && (v->crop_pad > 0 || v->flip)) || s->h != v->h || s->w != v->w || s->c != v->c)
        return false;
    long plane = (long)v->h * v->w;
    for (int c = 0; c < v->c; c++) {
        float mean = v->nnorm ? v->mean[c] : 0, std = v->nnorm ? v->std[c] : 1;
        size_t k = base + (size_t)c * (size_t)plane;
        if (s->x8)
            for (long i = 0; i < plane; i++)
                *out++ = ((float)s->x8[k + (size_t)i] / 255.0f - mean) / std;
        else
            for (long i = 0; i < plane; i++)
                *out++ = (s->xf[k + (size_t)i] - mean) / std;
    }
    return true;
}

static void gather_one(float *out, const RtSplit *s, const RtView *v, size_t base, RtRng *aug)
{
    if (gather_plain(out, s, v, base, aug))
        return;
    int dy = v->crop_pad, dx = v->crop_pad;
    bool flip = false;
    if (aug && v->crop_pad > 0) {
        dy = (int)rt_rng_below(aug, 2u * (uint32_t)v->crop_pad + 1);
        dx = (int)rt_rng_below(aug, 2u * (uint32_t)v->crop_pad + 1);
    }
    if (aug && v->flip)
        flip = rt_rng_below(aug, 2) == 1;
    for (int c = 0; c < v->c; c++) {
        int sc = s->c == 1 ? 0 : c;
        float mean = v->nnorm ? v->mean[c] : 0, std = v->nnorm ? v->std[c] : 1;
        for (int y = 0; y < v->h; y++) {
            int sy = y + dy - v->crop_pad;
            for (int x = 0; x < v->w; x++) {
                int fx = flip ? v->w - 1 - x : x, sx = fx + dx - v->crop_pad;
                float val = sy < 0 || sy >= v->h || sx < 0 || sx >= v->w
                                ? 0 : resized(s, v, base, sc, sy, sx);
                *out++ = (val - mean) / std;
            }
        }
    }
}

void rt_gather(float *x, const RtSplit *s, const RtView *v, const uint32_t *order, long first,
               long n, RtRng *aug)
{
    long per = (long)v->c * v->h * v->w;
    for (long i = 0; i < n; i++) {
        long k = order ? (long)order[first + i] : first + i;
        gather_one(x + i * per, s, v, rt_split_at(s, k) * (size_t)s->pixels, aug);
    }
}
