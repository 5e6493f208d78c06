/* fuzz_idx.c - the IDX reader (rt_idx_read), plain or gzipped, as labels
 * (1 dimension) and as images (3 dimensions). */
#include "fuzz_input.h"
#include "rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_input_path(data, size);
    for (int ndim = 1; ndim <= 3; ndim += 2) {
        RtIdx x;
        RtErr e;
        if (rt_idx_read(path, ndim, &x, &e)) {
            long n = 1;
            for (int i = 0; i < x.ndim; i++)
                n *= x.d[i];
            volatile unsigned sum = 0;
            for (long i = 0; i < n; i++)
                sum += x.data[i];
            rt_idx_free(&x);
        }
    }
    return 0;
}
