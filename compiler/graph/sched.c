/* sched.c - chooses how each node is computed, and says why.
 *
 * Needs: a complete graph (forward and backward) and the target
 * description.  Provides: one Sched per node.  The graph is not modified:
 * the schedule is a separate record, so a different choice never changes
 * what is computed, only how.
 *
 * Convolutions (conv, conv_dx, conv_dw, conv_transpose) run one of the
 * candidates of the table below: `direct` (lower_direct.c, lower_conv.c),
 * `im2col` (lower_im2col.c) or, for 2D 3x3 stride-1 conv and conv_dx,
 * `winograd` / `winograd2` (lower_winograd.c), or, for 1D/2D stride-1
 * conv, conv_dx and conv_dw, `fft` (lower_fft.c).  Model.conv_algo (--algo)
 * forces one, else a layer's `algo=` asks for one, else a plan file's
 * entry (measured by netc build --autotune, plan.c) picks one, else the
 * cost model estimates every applicable candidate and the cheapest wins:
 *
 *   %6 conv "layer": winograd  (winograd: est 29.9 ms (direct 62.5,
 *       im2col 66.4, winograd2 55; batch 32))
 *
 * Where an asked-for algorithm does not apply, the cost model's choice
 * stands and the reason says why.  A forward convolution the cost model
 * chose may also get a second algorithm for the batches where another
 * candidate is cheaper (Sched.alt; "the algorithm by batch", below).  Dense layers run as a `gemm`
 * (lower_gemm.c); every other node runs
 * `direct` loops.  A new convolution algorithm is a row of `candidates`:
 * why it cannot compute a node, and its cost.
 */
#include <math.h>
#include <string.h>

#include "netc.h"
#include "../lower/lower_direct.h"
#include "../lower/lower_fft.h"
#include "../lower/lower_winograd.h"

static const char *const algo_names[] = {"none", "direct", "im2col", "gemm", "winograd", "winograd2", "fft"};
_Static_assert(sizeof algo_names / sizeof algo_names[0] == ALGO_COUNT, "algo_names out of sync");

const char *algo_name(Algo a)
{
    NETC_ASSERT(a >= 0 && a < ALGO_COUNT);
    return algo_names[a];
}

bool algo_parse(const char *name, Algo *out)
{
    if (strcmp(name, "auto") == 0) {
        *out = ALGO_NONE;
        return true;
    }
    if (strcmp(name, "winograd4") == 0) { /* the default tile, by its size */
        *out = ALGO_WINOGRAD;
        return true;
    }
    for (int a = ALGO_NONE + 1; a < ALGO_COUNT; a++)
        if (strcmp(name, algo_names[a]) == 0) {
            *out = (Algo)a;
            return true;
        }
    return false;
}

/* ---- the cost model ---------------------------------------------------- */

/* A convolution node as the cost model sees it: the forward layer's
 * dimensions, whichever pass the node computes. */
typedef struct {
    const Graph *g;
    const Node *n;
    const ConvParam *p;
    double batch;
    int og, cg, groups;     /* output / input channels per group        */
    double taps;            /* K = kd*kh*kw                              */
    double pix_out, pix_in; /* P = od*oh*ow, and the input's pixels       */
    int oh, ow, ih, iw;     /* the last two output / input extents (1 if absent) */
    bool unit_stride, pointwise, padded;
} ConvDims;

static ConvDims conv_dims(const Graph *g, const Node *n, int batch)
{
    ConvDims c = {.g = g, .n = n, .p = &n->p.conv, .batch = batch};
    bool dx = n->op == OP_CONV_DX || n->op == OP_CONV_TRANSPOSE; /* conv_transpose is a conv_dx */
    const Shape *ys = n->op == OP_CONV ? &n->shape
                      : dx             ? &graph_node(g, n->in[0])->shape
                                            : &graph_node(g, n->in[1])->shape;
    const Shape *xs = n->op == OP_CONV || n->op == OP_CONV_DW ? &graph_node(g, n->in[0])->shape : &n->shape;
    const ConvParam *p = c.p;
    c.groups = p->groups;
    c.og = ys->d[0] / p->groups;
    c.cg = xs->d[0] / p->groups;
    c.taps = 1;
    c.pix_out = c.pix_in = 1;
    c.unit_stride = c.pointwise = true;
    for (int i = 0; i < p->nsp; i++) {
        c.taps *= p->kernel[i];
        c.pix_out *= ys->d[1 + i];
        c.pix_in *= xs->d[1 + i];
        c.unit_stride = c.unit_stride && p->stride[i] == 1;
        c.padded = c.padded || p->pad_lo[i] || p->pad_hi[i];
        c.pointwise = c.pointwise && p->kernel[i] == 1 && p->stride[i] == 1 && !p->pad_lo[i] && !p->pad_hi[i];
    }
    c.oh = p->nsp >= 2 ? ys->d[p->nsp - 1] : 1;
    c.ow = ys->d[p->nsp];
    c.ih = p->nsp >= 2 ? xs->d[p->nsp - 1] : 1;
    c.iw = xs->d[p->nsp];
    return c;
}

/* Machine rates, from the target description: one core's peak (vlen lanes,
 * two vector pipes, FMA counting two FLOPs) at a nominal clock, and the
 * bandwidth a stream gets from L2, L3 and memory, by the size of the data
 * it cycles through.  Only ratios matter for the choice; the clock makes
 * the estimates read as milliseconds (2.6 GHz: the peak the reference
 * machine measured with bench/peak.c). */
#define COST_GHZ 2.6e9
#define COST_L2_BPC 20.12     /* bytes per cycle streamed from L2            */
#define COST_L3_BPC 8.217     /* from L3                                     */
#define COST_MEM_BPC 4        /* from memory, one core                       */

/* Fitted to bench/algo_choice.sh's measurements (docs/ir.md, "The cost
 * model"): what each kernel achieves and the work around its FMAs. */
#define COST_DIRECT_EFF 0.793     /* direct micro-kernel: fraction of peak      */
#define COST_DIRECT_DW_EFF 0.4704   /* ... times this for one channel per group   */
#define COST_DIRECT_DX_C 37.56    /* conv_dx writing fewer channels per group:
                                   efficiency times sqrt(channels / this)     */
#define COST_DTILE_CYCLES 18.57   /* fixed cycles per direct tile               */
#define COST_REREAD_BPC 57.68     /* bytes per cycle of the direct kernel's
                                   input reread per channel block (in L2)     */
#define COST_RC 8               /* channels per direct tile (lower_direct.c)  */
#define COST_SCALAR_FPC 1.071     /* FLOPs per cycle of the scalar loops        */
#define COST_DWV_EFF 0.88         /* direct conv_dw tile: fraction of its cycles  */
#define COST_DWV_EFF1 0.55        /* ... with one vector of channels per tile    */
#define COST_DWISE_EFF 0.45       /* depthwise conv_dw: fraction of its load cycles,
                                     its copies included (128 channels 56x56) */
#define COST_GEMM_EFF 0.9741      /* GEMM: fraction of the modelled cycles      */
#define COST_TILE_CYCLES 12.31    /* fixed cycles per GEMM block                */
#define COST_CTILE_CPV 1.209     /* cycles per vector of a block's C tile      */
#define COST_GEMM_XB 0.5329      /* pointwise conv: B is x itself, not a panel */
#define COST_GEMM_XB_DX 0.6     /* ... pointwise conv_dx                      */
#define COST_DW_GEMM 0.8434      /* conv_dw's GEMM forms against a plain GEMM  */
#define COST_UNFOLD_CPF 0.7553    /* cycles per float of an unfold              */
#define COST_COL2IM_CPF 0.4      /* ... of col2im                              */
#define COST_WINO_FWD 11.4       /* Winograd input tile transform: cycles per
                                   point per vector of columns (its stores
                                   are a position's [Cg, hc] apart)          */
#define COST_WINO_INV 8.4        /* ... the output tile transform's           */
#define COST_WINO_MOVE_CPF 1.0   /* cycles per float gathered or scattered     */
#define COST_FFT_FWD 3.9         /* FFT input tile transforms: cycles per point
                                   and level, per vector of columns (its
                                   stores are a bin's [2Cg, 2hc] apart)      */
#define COST_FFT_INV 1.6          /* ... the inverse's (only kept outputs)     */
#define COST_FFT_FILTER 0.9       /* ... the filter's, one tile at a time       */
#define COST_FFT_MOVE_CPF 1.2     /* cycles per float gathered or scattered     */

static double peak_flops(const Target *t)
{
    return (double)t->vlen * (t->fma ? 4.0 : 2.0) * COST_GHZ;
}

/* Seconds to stream `bytes` through a working set of `set` bytes. */
static double stream(const Target *t, double bytes, double set)
{
    double bpc = set <= (double)t->l2 ? COST_L2_BPC : set <= (double)t->l3 ? COST_L3_BPC : COST_MEM_BPC;
    return bytes / (bpc * COST_GHZ);
}

/* Cycles of one column tile of nv vectors of a GEMM C [M, N] (+)= A [M, K]
 * B [K, N] on lower_gemm.c's micro-kernel: blocks of MR rows (14 with 32
 * vector registers, 6 with 16), each k step nv loads and MR broadcasts
 * (two a cycle) against MR*nv FMAs (two a cycle), so a block of m < MR
 * rows is load bound; each block loads or stores its C tile once per
 * reduction, plus a fixed overhead.  A column of floats costs what a tile
 * of one vector does: its k step is MR scalar FMAs. */
static double gemm_tile_cycles(const Target *t, double m, double k, double nv)
{
    double mr = t->vregs >= 32 ? 14 : 6;
    double full = floor(m / mr), rest = m - full * mr;
    double kstep_full = mr * nv / 2 * (t->fma ? 1 : 2);
    double kstep_rest = rest > 0 ? fmax(rest * nv * (t->fma ? 1 : 2), nv + rest) / 2 : 0;
    return full * (k * kstep_full + COST_CTILE_CPV * mr * nv + COST_TILE_CYCLES) +
           (rest > 0 ? k * kstep_rest + COST_CTILE_CPV * rest * nv + COST_TILE_CYCLES : 0);
}

/* Seconds of one GEMM C [M, N] (+)= A [M, K] B [K, N]: column tiles of
 * NV = 2 vectors, a column tail narrower than a vector costing a vector
 * (fitted so); a GEMM narrower than one vector runs on floats only, each
 * of its N columns a tile (lgemm_epi: Winograd's and the FFT's conv_dw
 * with 8 output channels on 16 lanes). */
static double gemm_seconds(const Target *t, double m, double k, double n)
{
    double lanes = t->vlen > 1 ? t->vlen : 1, nv = 2;
    if (n < lanes)
        return n * gemm_tile_cycles(t, m, k, 1) / (COST_GEMM_EFF * COST_GHZ);
    return ceil(ceil(n / lanes) / nv) * gemm_tile_cycles(t, m, k, nv) / (COST_GEMM_EFF * COST_GHZ);
}

/* The weight gradient's GEMM forms of lower_im2col.c, as fitted: columns
 * rounded up to a vector even when there are fewer (lgemm_dot runs its
 * vectors along P). */
static double gemm_dw_seconds(const Target *t, double m, double k, double n)
{
    double lanes = t->vlen > 1 ? t->vlen : 1;
    return gemm_seconds(t, m, k, fmax(n, lanes));
}

static double macs(const ConvDims *c)
{
    return c->batch * c->groups * c->og * c->cg * c->taps * c->pix_out;
}

/* Bytes of one sample's input and output planes. */
static double io_bytes(const ConvDims *c)
{
    return 4.0 * c->groups * (c->cg * c->pix_in + c->og * c->pix_out);
}

/* lower_direct.c's depthwise conv_dw (one input channel per group, og
 * not whole vectors): per sample and output channel both planes copied,
 * then each vector of positions (the plane at its padded row pitch with
 * unit strides, else each output row in whole vectors) loads dy once and
 * x once per tap, two loads a cycle, TB taps a pass. */
static double dwise_dw_cost(const ConvDims *c, const Target *t)
{
    double V = t->vlen, K = c->taps, rows = c->pix_out / c->ow;
    int a = c->p->nsp - 1;
    double pos = c->unit_stride ? rows * (c->ow + (c->p->kernel[a] - 1) * c->p->dilation[a])
                                : rows * ceil(c->ow / V) * V;
    double blocks = ceil(K / direct_dwise_taps(t->vregs));
    double cycles = c->batch * c->groups * c->og * ceil(pos / V) * (K + blocks) / 2;
    double io = io_bytes(c);
    return cycles / (COST_DWISE_EFF * COST_GHZ) + c->batch * stream(t, io, io);
}

/* direct conv_dw with whole vectors of output channels (lower_direct.c's
 * weight-gradient kernel): per output pixel, each tile of mr rows x nv
 * vectors does mr*nv FMAs on mr broadcasts and nv loads, two of either a
 * cycle; the input (copied when padded or strided) is read once per
 * column of tiles, dy transposed once; else a depthwise layer's kernel.
 * Negative: neither. */
static double direct_dw_cost(const ConvDims *c, const Target *t)
{
    int V, mr, nv;
    double rows = c->cg * c->taps;
    if (!direct_dw_tile(t->vlen, t->vregs, c->og, (int)rows, &V, &mr, &nv))
        return c->cg == 1 && t->vlen > 1 ? dwise_dw_cost(c, t) : -1;
    double tiles = ceil(rows / mr) * ceil(c->og / (double)(V * nv));
    double cycles = c->batch * c->groups * c->pix_out * tiles * fmax(mr * nv, mr + nv) / 2;
    double in = 4.0 * c->groups * c->cg * c->pix_in, dy = 4.0 * c->groups * c->og * c->pix_out;
    double copy = c->padded || !c->unit_stride ? 2 * in : 0;
    double bytes = in * ceil(c->og / (double)(V * nv)) + copy + 3 * dy;
    return cycles / ((nv > 1 ? COST_DWV_EFF : COST_DWV_EFF1) * COST_GHZ) +
           c->batch * stream(t, bytes, in + copy + dy);
}

/* direct: lower_direct.c's vector micro-kernel for conv and stride-1
 * conv_dx (a padded or strided input copied first; the input read once
 * per block of COST_RC output channels) and its weight-gradient kernel,
 * the scalar loops of lower_conv.c for strided conv_dx and the other
 * conv_dw. */
static double direct_cost(const ConvDims *c, const Target *t)
{
    double flops = 2 * macs(c);
    bool dx = c->n->op != OP_CONV;
    double scalar = flops / (COST_SCALAR_FPC * COST_GHZ);
    if (c->n->op == OP_CONV_DW) {
        double dw = direct_dw_cost(c, t);
        return dw >= 0 ? dw : scalar;
    }
    if (dx && !c->unit_stride)
        return scalar;
    double oc = dx ? c->cg : c->og;             /* channels the kernel writes */
    double ic = dx ? c->og : c->cg, ipix = dx ? c->pix_out : c->pix_in;
    double ow = dx ? c->iw : c->ow, iw = dx ? c->ow : c->iw;
    double eff = COST_DIRECT_EFF * (oc == 1 ? COST_DIRECT_DW_EFF : 1);
    if (dx && oc > 1 && oc < COST_DIRECT_DX_C)
        eff *= sqrt(oc / COST_DIRECT_DX_C);
    /* columns computed per row: whole vectors, or (unit strides, or a
     * strided 2D layer) the source's pitch when that is fewer; strided
     * planes narrower than a vector run on floats */
    double v = t->vlen, cols = ceil(ow / v) * v;
    if (c->unit_stride) {
        double pitch = iw + (c->padded ? ow - iw + 2 : 0);
        cols = fmin(cols, fmax(pitch, ow));
    } else if (!dx && c->p->nsp == 2 && ow >= v) {
        /* a strided 2D layer's flat form: its copy's rows are ow plus the
         * columns the last tap reaches past them (lower_direct.c; a plane
         * narrower than a vector is kept at the floats' estimate, which
         * chose better at batch 32 than the flat form's) */
        int a = c->p->nsp - 1;
        double pitch = ow + (c->p->kernel[a] - 1) * c->p->dilation[a] / c->p->stride[a];
        cols = fmin(cols, pitch);
    } else if (ow < v) {
        cols = ow * v;
    }
    eff *= ow / cols;
    double in = 4.0 * c->groups * ic * ipix;   /* what the taps read, per sample */
    double reads = in * (oc == 1 ? 1 : ceil(oc / COST_RC));
    double copy = c->padded || !c->unit_stride ? 2 * in : 0;
    /* tiles of COST_RC channels x 2 rows x 2 vectors, each with a fixed cost */
    double tiles = c->groups * ceil(oc / COST_RC) * ceil((dx ? c->pix_in / ow : c->pix_out / ow) / 2) *
                   ceil(ow / (2 * v));
    double reread = reads / ((in <= (double)t->l2 ? COST_REREAD_BPC : COST_L3_BPC) * COST_GHZ);
    return flops / (peak_flops(t) * eff) +
           c->batch * (tiles * COST_DTILE_CYCLES / COST_GHZ + reread +
                       stream(t, copy + io_bytes(c), copy + io_bytes(c)));
}

/* im2col: the unfold (or col2im) of [Cg*K, P] per sample and group, and
 * the GEMM: conv y [Og, P] = w [Og, Cg*K] col; conv_dx dcol [Cg*K, P] =
 * w^T [Cg*K, Og] dy; conv_dw dw [Og, Cg*K] += dy [Og, P] col^T (its
 * unfold in tiles that stay in L2).  A 1x1 stride-1 unpadded layer reads
 * x itself. */
static double im2col_cost(const ConvDims *c, const Target *t)
{
    double rows = c->cg * c->taps;
    double col = rows * c->pix_out;             /* floats unfolded per group */
    double gemm;
    if (c->n->op == OP_CONV)
        gemm = gemm_seconds(t, c->og, rows, c->pix_out);
    else if (c->n->op == OP_CONV_DW)
        gemm = gemm_dw_seconds(t, c->og, c->pix_out, rows) / COST_DW_GEMM;
    else
        gemm = gemm_seconds(t, rows, c->og, c->pix_out);
    /* the unfold (col2im) copies (adds) one float at a time */
    double cpf = c->n->op == OP_CONV_DX || c->n->op == OP_CONV_TRANSPOSE ? COST_COL2IM_CPF : COST_UNFOLD_CPF;
    /* a depthwise weight gradient's unfold (one plane's K rows per group,
     * unit strides) copies whole vectors of contiguous input and stays in
     * L1: at a float a time the 128-channel 56x56 layer's im2col was
     * estimated at 65 ms for 22 measured, and Winograd (76 ms) chosen */
    if (c->unit_stride && c->n->op == OP_CONV_DW && c->og == 1 && c->cg == 1 && t->vlen > 1)
        cpf /= t->vlen;
    double unfold = col * cpf / COST_GHZ + stream(t, 2 * 4.0 * col, c->n->op == OP_CONV_DW
                                                                                  ? (double)t->l2
                                                                                  : 4.0 * col);
    if (c->pointwise && c->n->op != OP_CONV_DW) {
        /* B's rows are planes P floats apart, not a packed panel */
        gemm /= c->n->op == OP_CONV ? COST_GEMM_XB : COST_GEMM_XB_DX;
        unfold = 0;
    }
    double io = io_bytes(c);
    return c->batch * (c->groups * (gemm + unfold) + stream(t, io, io));
}

/* The samples of a batch that a tiled kernel runs one at a time after its
 * blocks of S (at most `most`: wino_tail, fft_tail), and the blocks. */
static int tail_samples(const ConvDims *c, int S, int most, double *blocks)
{
    int rest = (int)c->batch % S, tail = rest <= most ? rest : 0;
    *blocks = ceil((c->batch - tail) / S);
    return tail;
}

/* Winograd F(m x m, 3x3), a = m + 2, T tiles a sample, per block of S
 * samples and group (lower_winograd.c, lower_tiles.h): the tiles gathered
 * into hc columns, the input transform over the columns writing [a*a,
 * Cg, hc], a*a GEMMs [Og, Cg] x [Cg, hc], the output transform reading
 * [a*a, Og, hc], the output tiles scattered (conv_dx: the channel roles
 * swapped, its padded copy of dy always made). */
static double wino_block_cost(const ConvDims *c, const Target *t, int m, double hc)
{
    double a2 = (m + 2) * (m + 2), v = t->vlen > 1 ? t->vlen : 1;
    bool dx = c->n->op == OP_CONV_DX, dw = c->n->op == OP_CONV_DW;
    double out = dx ? c->cg : c->og, in = dx ? c->og : c->cg;
    /* conv_dw: dy's tiles gathered channel-fastest (m*m floats a column
     * and channel, as the scatter) and through the output transform's
     * adjoint (m*m loads, a*a stores: as the input transform), then per
     * position the GEMM [Cg, hc] x [hc, Og] */
    double gemm = a2 * (dw ? gemm_seconds(t, in, hc, out) : gemm_seconds(t, out, in, hc));
    double xform = (in * COST_WINO_FWD + out * (dw ? COST_WINO_FWD : COST_WINO_INV)) * (hc / v) * a2 / COST_GHZ;
    double moved = (in * a2 + out * m * m) * hc * COST_WINO_MOVE_CPF / COST_GHZ;
    /* the constants were fitted with the columns streaming from L3 */
    return c->groups * (gemm + xform + moved);
}

/* The blocks of S samples, and (conv, conv_dx) the batch's last samples
 * one at a time where the lowering runs them so (wino_tail). */
static double wino_cost(const ConvDims *c, const Target *t, int m)
{
    bool dx = c->n->op == OP_CONV_DX, dw = c->n->op == OP_CONV_DW;
    double in = dx ? c->og : c->cg, v = t->vlen > 1 ? t->vlen : 1;
    double oh = dx ? c->ih : c->oh, ow = dx ? c->iw : c->ow;
    double T = ceil(oh / m) * ceil(ow / m);
    int S = wino_block((int)T);
    double hc = ceil(T * S / v) * v, hc1 = ceil(T / v) * v;
    double blocks;
    int tail = tail_samples(c, S, dw ? 0 : wino_tail((int)T, t->vlen), &blocks);
    double copy = c->padded || dx ? 2 * 4.0 * c->groups * in * (dx ? c->pix_out : c->pix_in) : 0;
    return blocks * wino_block_cost(c, t, m, hc) + (tail ? tail * wino_block_cost(c, t, m, hc1) : 0) +
           c->batch * stream(t, copy + io_bytes(c), copy + io_bytes(c));
}

static double wino4_cost(const ConvDims *c, const Target *t)
{
    return wino_cost(c, t, 4);
}

static double wino2_cost(const ConvDims *c, const Target *t)
{
    return wino_cost(c, t, 2);
}

static const char *fft_fit(const Graph *g, const Node *n, int *nh, int *nw);

/* fft (lower_fft.c), NH x NW transforms, output tiles MH x MW, T tiles a
 * plane, S samples a block, hc = S T columns rounded up to vectors, bins
 * NH (NW/2 + 1), for the correlation's IC -> OC channels: the filter's
 * spectra once per call (OC IC transforms, scalar); per block and group
 * the gather of IC NH NW hc floats, IC + OC transforms of hc columns (a
 * vector loop each), a GEMM [OC, 2 IC] x [2 IC, 2 hc] per bin with the
 * spectra (bins OC 2 IC floats) streamed from where they fit, and the
 * scatter of OC MH MW hc floats; a padded layer's input copied first. */
static double fft_block_seconds(const ConvDims *c, const Target *t, int nh, int nw, double hc)
{
    bool dw = c->n->op == OP_CONV_DW, dx = c->n->op == OP_CONV_DX;
    double oc = dx ? c->cg : c->og, ic = dx ? c->og : c->cg;
    int kh = c->p->nsp == 2 ? c->p->kernel[0] : 1, kw = c->p->kernel[c->p->nsp - 1];
    double mh = nh - kh + 1, mw = nw - kw + 1, v = t->vlen > 1 ? t->vlen : 1;
    double pts = (double)nh * nw, bins = nh * (nw / 2 + 1.0), levels = log2(pts) + 1;
    double spectra = 4.0 * c->groups * bins * oc * 2 * ic, cols = 4.0 * bins * 2 * ic * 2 * hc;
    /* conv_dw: dy's tiles through the forward transform too, per bin a
     * transposed copy of their spectra and the GEMM [2IC, 2hc] x [2hc, OC],
     * the spectra inverted once (as the filter's are transformed) */
    double xform = (ic * COST_FFT_FWD + oc * (dw ? COST_FFT_FWD : COST_FFT_INV)) * (hc / v) * pts * levels / COST_GHZ;
    double moved = ((ic * pts + oc * mh * mw) * hc + (dw ? bins * oc * 2 * hc : 0)) * COST_FFT_MOVE_CPF / COST_GHZ;
    double gemm = dw ? gemm_seconds(t, 2 * ic, 2 * hc, oc) : gemm_seconds(t, oc, 2 * ic, 2 * hc);
    return c->groups * (bins * gemm + xform + moved) + stream(t, spectra, spectra) + stream(t, 2 * cols, cols);
}

static double fft_seconds(const ConvDims *c, const Target *t)
{
    int nh, nw;
    const char *unfit = fft_fit(c->g, c->n, &nh, &nw);
    NETC_ASSERT(!unfit); /* estimated only where it applies */
    bool dx = c->n->op == OP_CONV_DX, dw = c->n->op == OP_CONV_DW;
    double oc = dx ? c->cg : c->og, ic = dx ? c->og : c->cg;
    double oh = dx ? c->ih : c->oh, ow = dx ? c->iw : c->ow;
    int kh = c->p->nsp == 2 ? c->p->kernel[0] : 1, kw = c->p->kernel[c->p->nsp - 1];
    double mh = nh - kh + 1, mw = nw - kw + 1, v = t->vlen > 1 ? t->vlen : 1;
    double T = ceil(oh / mh) * ceil(ow / mw);
    int S = fft_block((int)T);
    double hc = ceil(T * S / v) * v, hc1 = ceil(T / v) * v;
    /* conv and conv_dx run a batch's last samples one at a time (fft_tail) */
    double blocks;
    int tail = tail_samples(c, S, dw ? 0 : fft_tail((int)T, t->vlen), &blocks);
    double pts = (double)nh * nw, levels = log2(pts) + 1;
    double filter = c->groups * oc * ic * pts * levels * COST_FFT_FILTER / COST_GHZ;
    double copy = c->padded ? 2 * 4.0 * c->groups * ic * (dx ? c->pix_out : c->pix_in) : 0;
    return filter + blocks * fft_block_seconds(c, t, nh, nw, hc) +
           (tail ? tail * fft_block_seconds(c, t, nh, nw, hc1) : 0) +
           c->batch * stream(t, copy + io_bytes(c), copy + io_bytes(c));
}

/* winograd */
/* Why Winograd F(m x m, 3x3) cannot compute node n, or NULL when it can.
 * conv_dx is a correlation of dy padded by 2 - pad, so its padding must
 * not exceed 2. */
static const char *wino_unfit(const Graph *g, const Node *n)
{
    (void)g;
    const ConvParam *p = &n->p.conv;
    if (n->op == OP_CONV_TRANSPOSE)
        return "conv_transpose has no winograd lowering";
    if (p->nsp != 2)
        return "not a 2D convolution";
    for (int i = 0; i < 2; i++) {
        if (p->kernel[i] != 3)
            return "kernel is not 3x3";
        if (p->stride[i] != 1)
            return "stride is not 1";
        if (p->dilation[i] != 1)
            return "dilation is not 1";
        if (n->op == OP_CONV_DX && (p->pad_lo[i] > 2 || p->pad_hi[i] > 2))
            return "input gradient of a layer padded by more than 2";
    }
    return NULL;
}

/* Why the tiled FFT (lower_fft.c) cannot compute node n, or NULL when it
 * can, with its transform size in *nh x *nw.  conv_dx is a correlation of
 * dy padded by K - 1 - pad, so its padding must not exceed K - 1. */
static const char *fft_fit(const Graph *g, const Node *n, int *nh, int *nw)
{
    const ConvParam *p = &n->p.conv;
    if (n->op == OP_CONV_TRANSPOSE)
        return "conv_transpose has no fft lowering";
    if (p->nsp != 1 && p->nsp != 2)
        return "not a 1D or 2D convolution";
    int taps = 1;
    for (int i = 0; i < p->nsp; i++) {
        taps *= p->kernel[i];
        if (p->stride[i] != 1)
            return "stride is not 1";
        if (p->dilation[i] != 1)
            return "dilation is not 1";
        if (n->op == OP_CONV_DX && (p->pad_lo[i] > p->kernel[i] - 1 || p->pad_hi[i] > p->kernel[i] - 1))
            return "input gradient of a layer padded by more than its kernel less 1";
    }
    if (taps < 2)
        return "a 1x1 kernel";
    /* the correlation's output planes are the node's own (conv_dw: the
     * forward layer's, dy's); its channels per group: conv reduces Cg
     * into Og, conv_dx Og into Cg, conv_dw has the forward layer's tiles */
    const Shape *ys = n->op == OP_CONV_DW ? &graph_node(g, n->in[1])->shape : &n->shape;
    ConvDims c = conv_dims(g, n, 1);
    int og = c.og, cg = c.cg;
    bool dx = n->op == OP_CONV_DX;
    int kh = p->nsp == 2 ? p->kernel[0] : 1, kw = p->kernel[p->nsp - 1];
    int oh = p->nsp == 2 ? ys->d[1] : 1, ow = ys->d[p->nsp];
    if (!fft_size(kh, kw, oh, ow, dx ? og : cg, dx ? cg : og, nh, nw))
        return "kernel too large for the largest transform";
    return NULL;
}

static const char *fft_unfit(const Graph *g, const Node *n)
{
    int nh, nw;
    return fft_fit(g, n, &nh, &nw);
}

/* The candidates: every algorithm that may compute a convolution, why it
 * cannot compute a node (NULL: it can) and its estimated seconds.  A new
 * algorithm is a row here. */
typedef struct {
    Algo algo;
    const char *(*unfit)(const Graph *g, const Node *n);
    double (*cost)(const ConvDims *c, const Target *t); /* seconds of one call */
} Candidate;

static const Candidate candidates[] = {
    {ALGO_DIRECT, NULL, direct_cost},
    {ALGO_IM2COL, NULL, im2col_cost},
    {ALGO_WINOGRAD, wino_unfit, wino4_cost},
    {ALGO_WINOGRAD2, wino_unfit, wino2_cost},
    {ALGO_FFT, fft_unfit, fft_seconds},
};
enum { NCAND = sizeof candidates / sizeof candidates[0] };

static const Candidate *candidate(Algo a)
{
    for (int i = 0; i < NCAND; i++)
        if (candidates[i].algo == a)
            return &candidates[i];
    return NULL;
}

/* Why algorithm a cannot compute n ("" for an algorithm that is no
 * candidate), or NULL when it can. */
static const char *unfit(const Graph *g, Algo a, const Node *n)
{
    const Candidate *k = candidate(a);
    return !k ? "not a convolution algorithm" : k->unfit ? k->unfit(g, n) : NULL;
}

int sched_batch(const Model *m)
{
    return m->train.present && m->train.batch > 0 ? m->train.batch : 1;
}

int sched_candidates(const Graph *g, const Node *n, const Target *t, int batch, Algo *out, double *est)
{
    ConvDims c = conv_dims(g, n, batch);
    int k = 0;
    for (int i = 0; i < NCAND; i++) {
        if (candidates[i].unfit && candidates[i].unfit(g, n))
            continue;
        if (est)
            est[k] = candidates[i].cost(&c, t);
        out[k++] = candidates[i].algo;
    }
    return k;
}

/* The index in `candidates` of the cheapest for n at batch `batch`, with
 * every candidate's estimate in est (-1: it does not apply). */
static int conv_best(const Model *m, const Target *t, const Node *n, int batch, double *est)
{
    ConvDims c = conv_dims(m->g, n, batch);
    int best = -1;
    for (int i = 0; i < NCAND; i++) {
        est[i] = -1;
        if (candidates[i].unfit && candidates[i].unfit(m->g, n))
            continue;
        est[i] = candidates[i].cost(&c, t);
        if (best < 0 || est[i] < est[best])
            best = i;
    }
    NETC_ASSERT(best >= 0);
    return best;
}

static double conv_est(const Model *m, const Target *t, const Node *n, int i, int batch)
{
    ConvDims c = conv_dims(m->g, n, batch);
    return candidates[i].cost(&c, t);
}

/* The cheapest candidate, its reason naming every candidate's estimate:
 * "im2col: est 1.9 ms (direct 2.4, winograd n/a: stride is not 1)". */
static Sched conv_model(const Model *m, const Target *t, const Node *n)
{
    double est[NCAND];
    int best = conv_best(m, t, n, sched_batch(m), est);
    Buf b = {0};
    buf_printf(&b, "%s: est %.3g ms (", algo_name(candidates[best].algo), est[best] * 1e3);
    const char *sep = "";
    for (int i = 0; i < NCAND; i++) {
        if (i == best)
            continue;
        buf_printf(&b, "%s%s", sep, algo_name(candidates[i].algo));
        sep = ", ";
        if (est[i] >= 0) {
            buf_printf(&b, " %.3g", est[i] * 1e3);
            continue;
        }
        /* candidates that do not fit for the same reason share it */
        const char *why = candidates[i].unfit(m->g, n);
        int j = i + 1;
        while (j < NCAND && j != best && est[j] < 0 && !strcmp(candidates[j].unfit(m->g, n), why))
            buf_printf(&b, ", %s", algo_name(candidates[j++].algo));
        buf_printf(&b, " n/a: %s", why);
        i = j - 1;
        sep = "; ";
    }
    buf_printf(&b, "%sbatch %d)", sep[0] ? "; " : "", sched_batch(m));
    Sched s = {.algo = candidates[best].algo, .why = arena_strdup(m->arena, b.s)};
    buf_free(&b);
    return s;
}

/* ---- the algorithm by batch ---------------------------------------------
 *
 * A convolution's cheapest algorithm can change with the batch: at batch 1
 * a 512-channel 7x7 layer streams Winograd F(4x4)'s transformed filters
 * (4x the weights) for 16 columns, where F(2x2) or the direct kernel reads
 * less.  The model's choice is made at sched_batch; a forward conv also
 * asks which candidate is cheapest at batch 1 (or, for a model whose
 * batch is 1, at SCHED_ALT_PROBE), and when that one is estimated at least
 * SCHED_ALT_GAIN faster there, it is compiled too and computes the batches on
 * its side of the first batch where the two estimates cross:
 *
 *   %12 conv "layer4_0.conv2": winograd  (winograd: est 8.1 ms (...;
 *       batch 8); below batch 3: winograd2, est 1.2 ms against 2.6 at batch 1)
 *
 * program.c makes two calls, each guarded by the batch.  Forced, asked-for
 * and planned algorithms have no alternative, nor has any node with
 * --no-batch-algo. */
static void batch_alt(const Model *m, const Target *t, const Node *n, Sched *s)
{
    int batch = sched_batch(m), probe = batch > 1 ? 1 : SCHED_ALT_PROBE;
    if (m->no_batch_algo || n->op != OP_CONV)
        return;
    double est[NCAND];
    int best = conv_best(m, t, n, batch, est);
    int alt = conv_best(m, t, n, probe, est);
    if (alt == best || est[alt] >= SCHED_ALT_GAIN * est[best])
        return;
    int cross = 2; /* the alternative's batches: below cross, or from it */
    if (batch > 1) {
        while (cross < batch && conv_est(m, t, n, best, cross) > conv_est(m, t, n, alt, cross))
            cross++;
        s->alt_hi = cross;
    } else {
        while (cross < probe && conv_est(m, t, n, best, cross) <= conv_est(m, t, n, alt, cross))
            cross++;
        s->alt_lo = cross;
    }
    s->alt = candidates[alt].algo;
    s->why = arena_printf(m->arena, "%s; %s batch %d: %s, est %.3g ms against %.3g at batch %d", s->why,
                          batch > 1 ? "below" : "from", cross, algo_name(s->alt), est[alt] * 1e3,
                          est[best] * 1e3, probe);
}

/* ---- plans ------------------------------------------------------------- */

static void put_dims(Buf *b, const int *v, int n)
{
    for (int i = 0; i < n; i++)
        buf_printf(b, "%s%d", i ? "x" : "", v[i]);
}

const char *sched_signature(Arena *a, const Graph *g, const Node *n)
{
    bool dx = n->op == OP_CONV_DX || n->op == OP_CONV_TRANSPOSE;
    const Shape *ys = n->op == OP_CONV ? &n->shape
                      : dx             ? &graph_node(g, n->in[0])->shape
                                            : &graph_node(g, n->in[1])->shape;
    const Shape *xs = n->op == OP_CONV || n->op == OP_CONV_DW ? &graph_node(g, n->in[0])->shape : &n->shape;
    const ConvParam *p = &n->p.conv;
    Buf b = {0};
    for (int s = 0; s < 2; s++) {
        const Shape *sh = s ? ys : xs;
        buf_puts(&b, s ? "->[" : "[");
        for (int i = 0; i < sh->rank; i++)
            buf_printf(&b, "%s%d", i ? "," : "", sh->d[i]);
        buf_puts(&b, "]");
    }
    buf_puts(&b, ",k");
    put_dims(&b, p->kernel, p->nsp);
    buf_puts(&b, ",s");
    put_dims(&b, p->stride, p->nsp);
    buf_puts(&b, ",d");
    put_dims(&b, p->dilation, p->nsp);
    buf_puts(&b, ",p");
    for (int i = 0; i < p->nsp; i++)
        buf_printf(&b, "%s%d:%d", i ? "x" : "", p->pad_lo[i], p->pad_hi[i]);
    buf_printf(&b, ",g%d", p->groups);
    char *sig = arena_strdup(a, b.s);
    buf_free(&b);
    return sig;
}

/* The plan's entry per node (-1: none), after checking each entry against
 * the model; entries that do not fit are warnings and left out. */
/* Why entry e's second algorithm cannot compute node n at its batches,
 * or NULL when it can (or e names none). */
static const char *plan_alt_unfit(const Graph *g, const Node *n, const PlanEntry *e)
{
    if (!e->alt_name)
        return NULL;
    if (e->alt == ALGO_NONE)
        return "it is not an algorithm netc knows";
    if (n->op != OP_CONV)
        return "only a forward conv runs a second algorithm";
    if (e->alt == e->algo)
        return "it is the entry's algorithm";
    return unfit(g, e->alt, n);
}

static int *plan_index(const Model *m, const Plan *plan, Diag *d)
{
    const Graph *g = m->g;
    int *at = arena_alloc(m->arena, sizeof(int) * (size_t)(g->nnode ? g->nnode : 1));
    for (int i = 0; i < g->nnode; i++)
        at[i] = -1;
    for (int k = 0; plan && k < plan->n; k++) {
        const PlanEntry *e = &plan->e[k];
        int id = graph_find(g, e->layer);
        const Node *n = id >= 0 ? g->node[id] : NULL;
        if (!n) {
            diag_warning(d, e->loc, (int)strlen(e->layer),
                         "plan: the model has no node '%s'; the cost model decides instead", e->layer);
            continue;
        }
        if (n->op != e->pass) {
            diag_warning(d, e->loc, (int)strlen(e->layer),
                         "plan: '%s' is a %s node, not %s; the cost model decides instead", e->layer,
                         op_name(n->op), op_name(e->pass));
            continue;
        }
        const char *sig = sched_signature(m->arena, g, n);
        if (strcmp(sig, e->sig) != 0) {
            diag_warning(d, e->sig_loc, e->sig_len,
                         "plan: '%s' was measured as %s but is now %s; the cost model decides instead",
                         e->layer, e->sig, sig);
            continue;
        }
        if (e->algo == ALGO_NONE) {
            diag_warning(d, e->algo_loc, e->algo_len,
                         "plan: unknown algorithm '%s' for '%s'; the cost model decides instead", e->algo_name,
                         e->layer);
            continue;
        }
        const char *why = unfit(g, e->algo, n);
        if (why) {
            diag_warning(d, e->algo_loc, e->algo_len,
                         "plan: %s cannot compute '%s' (%s); the cost model decides instead",
                         algo_name(e->algo), e->layer, why);
            continue;
        }
        const char *alt_why = plan_alt_unfit(g, n, e);
        if (alt_why)
            diag_warning(d, e->alt_loc, e->alt_len, "plan: %s=%d:%s is ignored for '%s': %s",
                         e->alt_hi ? "below" : "from", e->alt_hi ? e->alt_hi : e->alt_lo, e->alt_name, e->layer,
                         alt_why);
        if (at[id] >= 0)
            diag_warning(d, e->loc, (int)strlen(e->layer),
                         "plan: a second entry for '%s' (the first is line %d); this one counts", e->layer,
                         plan->e[at[id]].loc.line);
        at[id] = k;
    }
    return at;
}

/* "plan: im2col, measured direct=0.4 im2col=0.21 ms (net.plan:3)", and
 * "; below batch 5: winograd2" when the entry names a second algorithm
 * that fits (plan_alt_unfit) and --no-batch-algo is off. */
static Sched plan_sched(const Model *m, const Plan *plan, const PlanEntry *e, const Node *n)
{
    Buf b = {0};
    buf_printf(&b, "plan: %s", algo_name(e->algo));
    for (int i = 0; i < e->ntime; i++)
        buf_printf(&b, "%s%s=%.4g", i ? " " : ", measured ", e->time_name[i], e->time_ms[i]);
    buf_printf(&b, "%s (%s:%d)", e->ntime ? " ms" : "", plan->file, e->loc.line);
    Sched s = {.algo = e->algo};
    if (e->alt_name && !plan_alt_unfit(m->g, n, e) && !m->no_batch_algo) {
        s.alt = e->alt;
        s.alt_lo = e->alt_lo;
        s.alt_hi = e->alt_hi;
        buf_printf(&b, "; %s batch %d: %s", e->alt_hi ? "below" : "from", e->alt_hi ? e->alt_hi : e->alt_lo,
                   algo_name(e->alt));
    }
    s.why = arena_strdup(m->arena, b.s);
    buf_free(&b);
    return s;
}

/* ---- the choice -------------------------------------------------------- */

/* Winograd `algo` (asked for by `by`) where it applies, else the cost
 * model's choice with the reason it does not. */
static Sched wino_rule(const Model *m, const Target *t, const Node *n, Algo algo, const char *by)
{
    const char *why = wino_unfit(m->g, n);
    const char *tile = algo == ALGO_WINOGRAD2 ? "F(2x2,3x3)" : "F(4x4,3x3)";
    if (!why)
        return (Sched){.algo = algo, .why = arena_printf(m->arena, "%s %s: %s", algo_name(algo), tile, by)};
    Sched s = conv_model(m, t, n);
    s.why = arena_printf(m->arena, "%s; not winograd: %s", s.why, why);
    return s;
}

/* fft (asked for by `by`) where it applies, else the cost model's choice
 * with the reason it does not. */
static Sched fft_rule(const Model *m, const Target *t, const Node *n, const char *by)
{
    int nh = 0, nw = 0;
    const char *unfit = fft_fit(m->g, n, &nh, &nw);
    if (!unfit)
        return (Sched){.algo = ALGO_FFT, .why = arena_printf(m->arena, "fft %dx%d, tiles %dx%d: %s", nh, nw,
                                              nh - (n->p.conv.nsp == 2 ? n->p.conv.kernel[0] : 1) + 1,
                                              nw - n->p.conv.kernel[n->p.conv.nsp - 1] + 1, by)};
    Sched s = conv_model(m, t, n);
    s.why = arena_printf(m->arena, "%s; not fft: %s", s.why, unfit);
    return s;
}

/* --algo forces every convolution; else the layer's algo= (copied to its
 * conv_dx and conv_dw) asks for its three passes; else the plan's entry;
 * else the cost model. */
static Sched conv_choice(const Model *m, const Target *t, const Node *n, const Plan *plan, int entry)
{
    Algo a = m->conv_algo;
    bool forced = a != ALGO_NONE;
    if (!forced)
        a = (Algo)n->p.conv.algo;
    NETC_ASSERT(a >= ALGO_NONE && a < ALGO_COUNT && a != ALGO_GEMM);
    if (a == ALGO_WINOGRAD || a == ALGO_WINOGRAD2)
        return wino_rule(m, t, n, a, forced ? "forced by --algo" : "the layer's algo=");
    if (a == ALGO_FFT)
        return fft_rule(m, t, n, forced ? "forced by --algo" : "the layer's algo=");
    if (a != ALGO_NONE)
        return (Sched){.algo = a, .why = arena_printf(m->arena, "%s: %s", algo_name(a),
                                       forced ? "forced by --algo" : "the layer's algo=")};
    if (entry >= 0)
        return plan_sched(m, plan, &plan->e[entry], n);
    Sched s = conv_model(m, t, n);
    batch_alt(m, t, n, &s);
    return s;
}

Sched *sched_choose_for(const Model *m, const Target *t, const Plan *plan, Diag *d)
{
    const Graph *g = m->g;
    Sched *s = arena_alloc(m->arena, sizeof(Sched) * (size_t)(g->nnode ? g->nnode : 1));
    NETC_ASSERT(m->conv_algo != ALGO_GEMM);
    int *entry = plan_index(m, plan, d);
    for (int i = 0; i < g->nnode; i++) {
        const Node *n = g->node[i];
        if (op_flags(n->op) & OPF_SOURCE) {
            s[i] = (Sched){.algo = ALGO_NONE, .why = "source: no computation"};
        } else if (n->op == OP_CONV || n->op == OP_CONV_DX || n->op == OP_CONV_DW ||
                   n->op == OP_CONV_TRANSPOSE) {
            s[i] = conv_choice(m, t, n, plan, entry[i]);
        } else if (n->op == OP_DENSE || n->op == OP_DENSE_DX || n->op == OP_DENSE_DW) {
            s[i] = (Sched){.algo = ALGO_GEMM, .why = "gemm: inner loop over independent outputs"};
        } else if (n->op == OP_MATMUL || n->op == OP_MATMUL_DA || n->op == OP_MATMUL_DB) {
            s[i] = (Sched){.algo = ALGO_GEMM, .why = "gemm: one per matrix of the batch"};
        } else {
            s[i] = (Sched){.algo = ALGO_DIRECT, .why = "direct loops"};
        }
    }
    return s;
}

Sched *sched_choose(const Model *m)
{
    return sched_choose_for(m, target_reference(), NULL, NULL);
}

void sched_print(FILE *f, const Model *m, const Sched *s)
{
    for (int i = 0; i < m->g->nnode; i++) {
        const Node *n = m->g->node[i];
        if (s[i].algo == ALGO_NONE)
            continue;
        fprintf(f, "%%%d %s \"%s\": %s  (%s)\n", i, op_name(n->op), n->name, algo_name(s[i].algo),
                s[i].why);
    }
}
