/* target.c - target descriptions from the host, a CPU name, or a feature list.
 *
 * Needs: nothing.  Provides: the Target records of target.h.  The host is
 * read once from the processor itself (cpuid through the compiler's
 * builtin on x86) and from sysfs/sysconf for caches and cores; a named
 * CPU comes from the table below, adjusted by +feature/-feature.
 */
#include "target.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *name;
    int vlen;
    bool fma;
    int vregs;
} CpuRow;

/* Vector facts per CPU name (LLVM's names).  Caches are the host's when
 * compiling for the host, else the defaults of target_reference. */
static const CpuRow cpus[] = {
    {"x86-64", 4, false, 16},         {"x86-64-v2", 4, false, 16},
    {"x86-64-v3", 8, true, 16},       {"haswell", 8, true, 16},
    {"broadwell", 8, true, 16},       {"skylake", 8, true, 16},
    {"alderlake", 8, true, 16},       {"znver1", 8, true, 16},
    {"znver2", 8, true, 16},          {"znver3", 8, true, 16},
    {"x86-64-v4", 16, true, 32},      {"skylake-avx512", 16, true, 32},
    {"cascadelake", 16, true, 32},    {"icelake-server", 16, true, 32},
    {"icelake-client", 16, true, 32}, {"sapphirerapids", 16, true, 32},
    {"emeraldrapids", 16, true, 32},  {"graniterapids", 16, true, 32},
    {"znver4", 16, true, 32},         {"znver5", 16, true, 32},
    {"generic", 4, false, 16},
};

static const Target reference = {"x86-64-v3 (reference)", 8, true, 16, 32 << 10, 1 << 20, 32 << 20, 2};

const Target *target_reference(void)
{
    return &reference;
}

static long sysfs_cache(int level, const char *type)
{
    for (int i = 0; i < 8; i++) {
        char path[96], buf[32];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *f = fopen(path, "r");
        if (!f)
            break;
        int lv = 0;
        bool ok = fscanf(f, "%d", &lv) == 1;
        fclose(f);
        if (!ok || lv != level)
            continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        if (!(f = fopen(path, "r")))
            continue;
        ok = fgets(buf, sizeof buf, f) != NULL;
        fclose(f);
        if (!ok || strncmp(buf, type, strlen(type)) != 0)
            continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if (!(f = fopen(path, "r")))
            continue;
        long kib = 0;
        char unit = 'K';
        int got = fscanf(f, "%ld%c", &kib, &unit);
        fclose(f);
        if (got >= 1 && kib > 0)
            return unit == 'M' ? kib << 20 : kib << 10;
    }
    return 0;
}

static void host_memory(Target *t)
{
    long v;
    if ((v = sysfs_cache(1, "Data")) > 0)
        t->l1d = v;
    if ((v = sysfs_cache(2, "Unified")) > 0)
        t->l2 = v;
    if ((v = sysfs_cache(3, "Unified")) > 0)
        t->l3 = v;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    t->cores = n >= 1 && n <= 4096 ? (int)n : 1;
}

void target_host(Target *t)
{
    *t = reference;
    t->name = "host";
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    t->vlen = 4;
    t->fma = false;
    t->vregs = 16;
    if (__builtin_cpu_supports("avx2")) {
        t->vlen = 8;
        t->fma = __builtin_cpu_supports("fma");
    }
    if (__builtin_cpu_supports("avx512f")) {
        t->vlen = 16;
        t->vregs = 32;
    }
    t->name = t->vlen == 16 ? "host (x86-64, AVX-512)" : t->vlen == 8 ? "host (x86-64, AVX2)" : "host (x86-64, SSE)";
#elif defined(__aarch64__)
    t->vlen = 4;
    t->fma = true;
    t->vregs = 32;
    t->name = "host (aarch64, NEON)";
#else
    t->vlen = 1;
    t->fma = false;
    t->name = "host (no vector unit known to netc)";
#endif
    host_memory(t);
}

static bool host_arch(const char *triple)
{
    if (!triple)
        return true;
#if defined(__x86_64__)
    return !strncmp(triple, "x86_64", 6);
#elif defined(__aarch64__)
    return !strncmp(triple, "aarch64", 7);
#else
    return false;
#endif
}

/* Applies "+avx512f,-fma,..." to t. */
static bool apply_features(Target *t, const char *features, Diag *d)
{
    const char *p = features;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len < 2 || (p[0] != '+' && p[0] != '-')) {
            diag_plain(d, "--features: '%.*s' is not +NAME or -NAME (example: +avx2,-fma)", (int)len, p);
            return false;
        }
        bool on = p[0] == '+';
        const char *f = p + 1;
        size_t fl = len - 1;
#define IS(s) (fl == strlen(s) && !strncmp(f, s, fl))
        if (IS("avx512f")) {
            if (on) {
                t->vlen = 16;
                t->vregs = 32;
            } else if (t->vlen > 8) {
                t->vlen = 8;
                t->vregs = 16;
            }
        } else if (IS("avx2") || IS("avx")) {
            if (on && t->vlen < 8)
                t->vlen = 8;
            else if (!on && t->vlen > 4)
                t->vlen = 4, t->vregs = 16;
        } else if (IS("fma")) {
            t->fma = on;
        } else if (IS("sse2") || IS("neon")) {
            if (on && t->vlen < 4)
                t->vlen = 4;
            else if (!on)
                t->vlen = 1;
        }
#undef IS
        p = end ? end + 1 : NULL;
    }
    return true;
}

bool target_describe(Target *t, const char *triple, const char *cpu, const char *features, Diag *d)
{
    bool native = !cpu || !strcmp(cpu, "native");
    if (native && host_arch(triple)) {
        target_host(t);
    } else {
        *t = reference;
        t->name = cpu ? cpu : "generic";
        if (triple && !strncmp(triple, "aarch64", 7)) {
            t->vlen = 4, t->fma = true, t->vregs = 32;
        } else if (triple && strncmp(triple, "x86_64", 6) != 0) {
            t->vlen = 1, t->fma = false;
        } else {
            t->vlen = 4, t->fma = false, t->vregs = 16;
        }
        for (size_t i = 0; cpu && i < sizeof cpus / sizeof cpus[0]; i++)
            if (!strcmp(cpu, cpus[i].name) && (!triple || !strncmp(triple, "x86_64", 6))) {
                t->vlen = cpus[i].vlen;
                t->fma = cpus[i].fma;
                t->vregs = cpus[i].vregs;
            }
    }
    return apply_features(t, features, d);
}

void target_print(FILE *f, const Target *t)
{
    fprintf(f, "target %s: %d lanes, %s, %d vector registers, L1d %ld KiB, L2 %ld KiB, L3 %ld KiB, %d cores\n",
            t->name, t->vlen, t->fma ? "fma" : "no fma", t->vregs, t->l1d >> 10, t->l2 >> 10, t->l3 >> 10,
            t->cores);
}
