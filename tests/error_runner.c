/* error_runner - checks one golden error test (a tests/errors/NAME.net).
 *
 * The file holds a network with mistakes and the errors netc must report:
 *
 *   # expect-error: 4:9: unknown layer 'conv2d'
 *   # expect-hint: did you mean 'conv'?
 *
 * The runner loads it with frontend_load and passes when the load fails,
 * every expected error appears as "<file>:<line>:<col>: error: ...<text>...",
 * every expected hint appears on a "  hint:" line, no other error is
 * reported, and nothing mentions an internal error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netc.h"

enum { MAX_EXPECT = 64 };

typedef struct {
    int line, col;
    char text[256];
    bool hint;
} Expect;

static int read_expectations(const char *path, Expect *e)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    char buf[1024];
    int n = 0;
    while (fgets(buf, sizeof buf, f) && n < MAX_EXPECT) {
        buf[strcspn(buf, "\n")] = 0;
        const char *p;
        if ((p = strstr(buf, "# expect-error: "))) {
            p += strlen("# expect-error: ");
            int used = 0;
            if (sscanf(p, "%d:%d: %n", &e[n].line, &e[n].col, &used) < 2 || used == 0) {
                fprintf(stderr, "%s: malformed expectation: %s\n", path, buf);
                fclose(f);
                return -1;
            }
            snprintf(e[n].text, sizeof e[n].text, "%s", p + used);
            e[n++].hint = false;
        } else if ((p = strstr(buf, "# expect-hint: "))) {
            snprintf(e[n].text, sizeof e[n].text, "%s", p + strlen("# expect-hint: "));
            e[n++].hint = true;
        }
    }
    fclose(f);
    return n;
}

/* Whether `out` has a line starting with prefix that contains text. */
static bool has_line(const char *out, const char *prefix, const char *text)
{
    size_t pl = strlen(prefix);
    for (const char *line = out; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len >= pl && !strncmp(line, prefix, pl)) {
            char *copy = strndup(line, len);
            bool found = strstr(copy + pl, text) != NULL;
            free(copy);
            if (found)
                return true;
        }
        line += len + (end != NULL);
    }
    return false;
}

/* Error headers: "<file>:L:C: error: " or "netc: error: ". */
static int count_errors(const char *out, const char *file)
{
    int n = 0;
    size_t fl = strlen(file);
    for (const char *line = out; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        int l, c, used = 0;
        if (!strncmp(line, "netc: error: ", 13))
            n++;
        else if (len > fl && !strncmp(line, file, fl) && line[fl] == ':' &&
                 sscanf(line + fl + 1, "%d:%d: error: %n", &l, &c, &used) == 2 && used > 0)
            n++;
        line += len + (end != NULL);
    }
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: error_runner FILE.net\n");
        return 2;
    }
    const char *path = argv[1];
    Expect e[MAX_EXPECT];
    int n = read_expectations(path, e);
    if (n <= 0) {
        fprintf(stderr, "%s: no '# expect-error:' lines\n", path);
        return 1;
    }
    char *out = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&out, &len);
    Diag d;
    diag_init(&d, mem);
    d.max_errors = 50;
    Model *m = frontend_load(path, &d);
    fclose(mem);

    bool pass = true;
    if (m) {
        fprintf(stderr, "FAIL: %s loaded without errors\n", path);
        pass = false;
        model_free(m);
    }
    if (strstr(out, "internal error")) {
        fprintf(stderr, "FAIL: an internal error was reported\n");
        pass = false;
    }
    int nerr = 0;
    for (int i = 0; i < n; i++) {
        if (e[i].hint) {
            if (!has_line(out, "  hint: ", e[i].text)) {
                fprintf(stderr, "FAIL: missing hint: %s\n", e[i].text);
                pass = false;
            }
            continue;
        }
        nerr++;
        char prefix[512];
        snprintf(prefix, sizeof prefix, "%s:%d:%d: error: ", path, e[i].line, e[i].col);
        if (!has_line(out, prefix, e[i].text)) {
            fprintf(stderr, "FAIL: missing error: %s%s\n", prefix, e[i].text);
            pass = false;
        }
    }
    int got = count_errors(out, path);
    if (got != nerr) {
        fprintf(stderr, "FAIL: %d errors reported, %d expected\n", got, nerr);
        pass = false;
    }
    if (!pass)
        fprintf(stderr, "---- netc said:\n%s----\n", out);
    free(out);
    diag_free(&d);
    return pass ? 0 : 1;
}
