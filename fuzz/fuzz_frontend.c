/* fuzz_frontend.c - the .net front end: scanner, parser, elaboration and
 * shape inference (frontend_load_string), the channel-shuffle pass, then
 * autodiff when the model
 * has a loss, and the graph verifier on whatever was accepted.  A model
 * the front end accepts must verify; an input it refuses must have
 * reported an error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    if (!devnull)
        devnull = fopen("/dev/null", "w");
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    Diag d;
    diag_init(&d, devnull);
    Model *m = frontend_load_string("fuzz.net", text, &d);
    if (m) {
        NETC_ASSERT(d.nerror == 0);
        shuffle_groups(m, &d);
        NETC_ASSERT(d.nerror == 0 && graph_verify(m->g, stderr));
        if (m->g->loss >= 0)
            autodiff(m, m->g->loss, -1);
        NETC_ASSERT(graph_verify(m->g, stderr));
        model_free(m);
    } else {
        NETC_ASSERT(d.nerror > 0);
    }
    diag_free(&d);
    free(text);
    return 0;
}
