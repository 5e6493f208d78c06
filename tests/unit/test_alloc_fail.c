/* Allocation failure over a whole compile.
 *
 * For each example in examples/, a compile (front end, autodiff, verifier,
 * schedule, lowering and memory plan, C emission into a temporary
 * directory) is first run to count its allocations; then, in a forked
 * child per N, the Nth allocation fails.  netc_alloc reports the
 * exhaustion and exits with status 3, so every child must exit 3 having
 * printed "out of memory": never crash, never carry on, and under ASan no
 * leak (LeakSanitizer would change the status).
 *
 * A child costs a compile, so testing every N would be quadratic: the
 * first FIRST allocations are all tried (the front end's set-up, where
 * the cases differ most), then N grows by a factor STEP, which still
 * reaches every phase (about 180 children per example).  One more input,
 * nested 300 parentheses deep, makes the parser grow its stacks (through
 * YYMALLOC, so their allocations fail too).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emit_c.h"
#include "netc.h"

enum { FIRST = 128 };
#define STEP 1.03

/* The pipeline as netc build runs it, to emit_c; false on a user error. */
static bool compile(const char *path, const char *dir)
{
    Diag d;
    diag_init(&d, stderr);
    Model *m = frontend_load(path, &d);
    bool ok = m != NULL;
    if (ok) {
        if (m->g->loss >= 0)
            autodiff(m, m->g->loss, -1);
        NETC_ASSERT(graph_verify(m->g, stderr));
        Sched *s = sched_choose(m);
        Program *p = program_build(m, s);
        ok = emit_c(p, dir, &d) && d.nerror == 0;
        program_free(p);
    }
    model_free(m);
    diag_free(&d);
    return ok;
}

/* Runs the compile with the nth allocation failing; returns the child's
 * wait status and leaves what it printed in `log`. */
static int fail_at(const char *path, const char *dir, long n, const char *log)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(log, "w", stderr))
            _exit(100);
        netc_alloc_count = 0;
        netc_alloc_fail_at = n;
        compile(path, dir);
        _exit(0); /* the failure did not happen, or was swallowed */
    }
    int status;
    assert_true(waitpid(pid, &status, 0) == pid);
    return status;
}

static bool file_has(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char buf[4096];
    bool found = false;
    while (!found && fgets(buf, sizeof buf, f))
        found = strstr(buf, text) != NULL;
    fclose(f);
    return found;
}

static void walk(const char *path)
{
    char dir[] = "/tmp/netc-allocfail-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char log[64];
    snprintf(log, sizeof log, "%s/log", dir);

    long before = netc_alloc_count;
    assert_true(compile(path, dir));
    long total = netc_alloc_count - before;
    assert_true(total > 0);

    int children = 0;
    for (long n = 1; n <= total; n = n < FIRST ? n + 1 : (long)(n * STEP) + 1) {
        int status = fail_at(path, dir, n, log);
        children++;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 3 || !file_has(log, "out of memory")) {
            fprintf(stderr, "%s: allocation %ld of %ld: ", path, n, total);
            if (WIFSIGNALED(status))
                fprintf(stderr, "killed by signal %d\n", WTERMSIG(status));
            else
                fprintf(stderr, "exit status %d\n", WEXITSTATUS(status));
            char cmd[128];
            snprintf(cmd, sizeof cmd, "head -20 %s >&2", log);
            if (system(cmd) != 0)
                fprintf(stderr, "(no log)\n");
            fail();
        }
    }
    /* One past the last allocation: the compile succeeds. */
    int status = fail_at(path, dir, total + 1, log);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("%s: %ld allocations, %d failure points checked\n", path, total, children);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_examples(void **state)
{
    (void)state;
    DIR *d = opendir("examples");
    assert_non_null(d);
    char *names[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".net"))
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "examples/%s", names[i]);
        walk(path);
        free(names[i]);
    }
}

static void test_deep_nesting(void **state)
{
    (void)state;
    const char *path = "/tmp/netc-allocfail-deep.net";
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("network deep\ninput x: [4]\nx -> dense(", f);
    for (int i = 0; i < 300; i++)
        fputc('(', f);
    fputc('2', f);
    for (int i = 0; i < 300; i++)
        fputc(')', f);
    fputs(") => y\noutput y\n", f);
    fclose(f);
    walk(path);
    remove(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples),
        cmocka_unit_test(test_deep_nesting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
