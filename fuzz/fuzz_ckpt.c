/* fuzz_ckpt.c - checkpoints and weights files (rt_ckpt_load) for a fixed
 * small model: the tensors checked against the model's parameters and,
 * when resuming, the optimiser state in the safetensors metadata. */
#include <string.h>

#include "fuzz_input.h"
#include "rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* netc emit-c of: input x: [3]; x -> d: dense(2) => y */
static const char model[] =
    "netc 1\n"
    "name w\n"
    "params 8\n"
    "arena 16 0\n"
    "input x 1 3\n"
    "output d 1 2\n"
    "param d.weight 0 6 2 2 3 he_uniform 0 0 3 2\n"
    "param d.bias 6 2 1 2 zero 0 0 3 2\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static RtMeta m;
    static bool have_meta;
    RtErr e;
    if (!have_meta) {
        if (!rt_meta_parse(&m, model, &e)) {
            fprintf(stderr, "%s\n", e.msg);
            abort();
        }
        have_meta = true;
    }
    const char *path = fuzz_input_path(data, size);
    float params[8], state[8 * RT_OPT_SLOTS]; /* optimiser state: RT_OPT_SLOTS per float */
    RtTrainState s;
    memset(&s, 0, sizeof s);
    (void)rt_ckpt_load(path, &m, params, NULL, NULL, &e);
    (void)rt_ckpt_load(path, &m, params, state, &s, &e);
    return 0;
}
