/* emit_llvm_off.c - the LLVM backend's interface when netc is built
 * without LLVM (NETC_LLVM=OFF, or no LLVM found at configure time).
 *
 * Lets the driver and tests call emit_llvm_* unconditionally: the
 * functions report that the backend is missing and fail, so no caller
 * needs an #ifdef.  CMake compiles exactly one of emit_llvm.c and this.
 */
#include "emit_llvm.h"

bool emit_llvm_available(void)
{
    return false;
}

const char *emit_llvm_version(void)
{
    return "no LLVM";
}

static bool unavailable(Diag *d)
{
    diag_plain(d, "this netc was built without the LLVM backend");
    diag_hint(d, "use --backend c, or rebuild netc with LLVM (cmake -DNETC_LLVM=ON, needs llvm-dev)");
    return false;
}

bool emit_llvm_ir(const Program *p, const LlvmOptions *o, const char *path_ll, Diag *d)
{
    (void)p, (void)o, (void)path_ll;
    return unavailable(d);
}

bool emit_llvm_obj(const Program *p, const LlvmOptions *o, const char *path_o, bool with_main,
                   Diag *d)
{
    (void)p, (void)o, (void)path_o, (void)with_main;
    return unavailable(d);
}

int emit_llvm_parts(const Program *p, const LlvmOptions *o, const char *prefix, int max_parts,
                    int threads, bool with_main, Diag *d)
{
    (void)p, (void)o, (void)prefix, (void)max_parts, (void)threads, (void)with_main;
    return unavailable(d) ? 1 : 0;
}
