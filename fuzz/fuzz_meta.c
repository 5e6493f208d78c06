/* fuzz_meta.c - the model description a generated program hands the
 * runtime (rt_meta_parse), the text checkpoints are checked against. */
#include <stdlib.h>
#include <string.h>

#include "rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    RtMeta m;
    RtErr e;
    if (rt_meta_parse(&m, text, &e)) {
        for (int i = 0; i < m.nparam; i++)
            if (rt_meta_param(&m, m.param[i].t.name) == NULL)
                abort();
        rt_meta_free(&m);
    }
    free(text);
    return 0;
}
