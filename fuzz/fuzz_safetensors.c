/* fuzz_safetensors.c - the safetensors reader (rt_st_read) and lookups in
 * what it returns. */
#include "fuzz_input.h"
#include "rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    StFile f;
    RtErr e;
    if (rt_st_read(&f, fuzz_input_path(data, size), &e)) {
        /* Every tensor lies inside the data. */
        for (int i = 0; i < f.n; i++) {
            if (f.t[i].begin > f.t[i].end || f.t[i].end > f.data_len)
                abort();
            if (rt_st_find(&f, f.t[i].name) == NULL)
                abort();
        }
        (void)rt_st_meta(&f, "netc.kind");
        rt_st_free(&f);
    }
    return 0;
}
