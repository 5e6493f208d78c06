/* lenet_predict.c - classify one Fashion-MNIST image with the C that netc
 * generates for examples/lenet.net, using static memory only.
 *
 * Train, then embed the trained weights in the generated code:
 *   netc build examples/lenet.net -o lenet && ./lenet train --save lenet.ckpt
 *   netc emit-c examples/lenet.net --weights lenet.ckpt -o gen
 *   cc -std=c99 -O2 -Igen docs/examples/lenet_predict.c gen/lenet.c -lm -o lenet_predict
 * Run on a raw image (28*28 bytes, row-major, 0 = background):
 *   ./lenet_predict shoe.raw
 *
 * Everything the model needs is sized by constants in lenet.h, so the RAM
 * it takes is known before it runs: the arena, the input and the output
 * below, plus the weights, which are const and can live in flash.
 * tests/unit/test_emit_c.c compiles this file against a generated header.
 */
#include <stdio.h>

#include "lenet.h"

static const char *const class_name[] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
};

/* A compile-time check that the model has one output per class. */
typedef char lenet_has_ten_classes[LENET_FORWARD_OUT0_FLOATS(1) == 10 ? 1 : -1];

static float arena[LENET_FORWARD_ARENA_FLOATS(1)];
static float image[LENET_FORWARD_IN0_FLOATS(1)];
static float logits[LENET_FORWARD_OUT0_FLOATS(1)];
static unsigned char pixel[LENET_FORWARD_IN0_FLOATS(1)];

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s IMAGE.raw  (28*28 bytes)\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    size_t got = fread(pixel, 1, sizeof pixel, f);
    fclose(f);
    if (got != sizeof pixel) {
        fprintf(stderr, "%s: expected %u bytes, read %u\n", argv[1],
                (unsigned)sizeof pixel, (unsigned)got);
        return 1;
    }
    /* the runtime scales its training data the same way */
    for (size_t i = 0; i < sizeof pixel; i++)
        image[i] = (float)pixel[i] / 255.0f;

    lenet_predict(1, lenet_weights, arena, image, logits);

    int best = 0;
    for (int k = 1; k < 10; k++)
        if (logits[k] > logits[best])
            best = k;
    printf("predicted class %d (%s)\n", best, class_name[best]);
    for (int k = 0; k < 10; k++)
        printf("  %-12s %9.4f\n", class_name[k], (double)logits[k]);
    return 0;
}
