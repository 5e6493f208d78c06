/* fuzz_npy.c - the .npy reader (rt_npy_read), predict's input format. */
#include "fuzz_input.h"
#include "rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    RtArray a;
    RtErr e;
    if (rt_npy_read(fuzz_input_path(data, size), &a, &e)) {
        long numel = 1;
        for (int i = 0; i < a.rank; i++)
            numel *= a.d[i];
        if (numel != a.numel)
            abort();
        volatile float sum = 0; /* touch every element: ASan checks the size */
        for (long i = 0; i < a.numel; i++)
            sum += a.data[i];
        rt_array_free(&a);
    }
    return 0;
}
