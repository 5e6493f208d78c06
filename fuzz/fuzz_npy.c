/* fuzz_npy.c - the .npy readers: rt_npy_read (predict's input format) and
 * rt_npy_map (data sets), on the same input. */
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
    RtNpyMap m;
    if (rt_npy_map(fuzz_input_path(data, size), &m, &e)) {
        long numel = 1;
        for (int i = 0; i < m.rank; i++)
            numel *= m.d[i];
        if (numel != m.numel)
            abort();
        volatile unsigned long long sum = 0; /* every item read */
        for (long i = 0; m.descr[1] != 'f' && i < m.numel; i++)
            sum += (unsigned long long)rt_npy_int(&m, i);
        if (m.numel && m.data[(size_t)m.numel * (size_t)m.item - 1] == 0x5a)
            sum++;
        rt_npy_unmap(&m);
    }
    return 0;
}
