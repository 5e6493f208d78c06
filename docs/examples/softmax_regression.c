/* softmax_regression.c - a model written by hand in the form netc emits,
 * to show the runtime's contract: a description, a forward entry, a train
 * entry and a main() that hands them to netc_main.
 *
 * The model is softmax regression on 4x4 single-channel images with three
 * classes: y = W x + b, W [3, 16] (PyTorch's Linear layout), b [3].
 * Build:  cc -Iruntime softmax_regression.c libnetcrt.a -lz -lm -pthread -o tiny
 * Run:    ./tiny train --data DIR --save tiny.ckpt
 * tests/runtime/test_train.c builds this file and trains it.
 */
#include <math.h>
#include <string.h>

#include "netc_runtime.h"

enum { PIXELS = 16, CLASSES = 3, W_OFF = 0, B_OFF = PIXELS * CLASSES };

const char tiny_meta[] =
    "netc 1\n"
    "name tiny\n"
    "params 51\n"
    "arena 0 3\n"
    "input x 3 1 4 4\n"
    "output y 1 3\n"
    "param fc.weight 0 48 2 3 16 xavier_uniform 0 0 16 3\n"
    "param fc.bias 48 3 1 3 zero 0 0 16 3\n"
    "train loss softmax_cross_entropy\n"
    "train target class 0\n"
    "train optimizer sgd lr=0.1 momentum=0.9 dampening=0 weight_decay=0.0001 nesterov=0\n"
    "train batch 8\n"
    "train epochs 4\n"
    "train seed 1\n"
    "train data idx data\n"
    "end\n";

/* y [n, 3] = x [n, 16] W^T + b */
static void linear(int n, const float *params, const float *x, float *y)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < CLASSES; k++) {
            float s = params[B_OFF + k];
            for (int j = 0; j < PIXELS; j++)
                s += params[W_OFF + k * PIXELS + j] * x[i * PIXELS + j];
            y[i * CLASSES + k] = s;
        }
}

void tiny_forward(int n, const float *params, float *grads, float *arena,
                  const float *const *in, float *const *out)
{
    (void)grads;
    (void)arena;
    linear(n, params, in[0], out[0]);
}

/* in = {x, labels}, out = {logits, loss}; loss and gradients are means
 * over the batch.  The arena holds dlogits [n, 3] (its "arena 0 3"). */
void tiny_train(int n, const float *params, float *grads, float *arena,
                const float *const *in, float *const *out)
{
    const float *x = in[0], *label = in[1];
    float *y = out[0], *dy = arena;
    double loss = 0;
    linear(n, params, x, y);
    for (int i = 0; i < n; i++) {
        const float *yi = y + i * CLASSES;
        float mx = yi[0];
        for (int k = 1; k < CLASSES; k++)
            mx = yi[k] > mx ? yi[k] : mx;
        float sum = 0;
        for (int k = 0; k < CLASSES; k++)
            sum += expf(yi[k] - mx);
        int t = (int)label[i];
        loss += (double)(mx + logf(sum) - yi[t]);
        for (int k = 0; k < CLASSES; k++)
            dy[i * CLASSES + k] = (expf(yi[k] - mx) / sum - (k == t ? 1.0f : 0.0f)) / (float)n;
    }
    memset(grads, 0, (B_OFF + CLASSES) * sizeof *grads);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < CLASSES; k++) {
            grads[B_OFF + k] += dy[i * CLASSES + k];
            for (int j = 0; j < PIXELS; j++)
                grads[W_OFF + k * PIXELS + j] += dy[i * CLASSES + k] * x[i * PIXELS + j];
        }
    out[1][0] = (float)(loss / n);
}

int main(int argc, char **argv)
{
    return netc_main(argc, argv, tiny_meta, tiny_forward, tiny_train, NULL, NULL);
}
