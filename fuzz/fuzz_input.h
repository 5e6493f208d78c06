/* fuzz_input.h - hands a fuzz input to a reader that takes a path.
 *
 * The runtime's readers open files by name, so each input is written to
 * one anonymous in-memory file (memfd) and read back through
 * /proc/self/fd/N: nothing touches the disk and nothing is left behind.
 */
#ifndef NETC_FUZZ_INPUT_H
#define NETC_FUZZ_INPUT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *fuzz_input_path(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("netc-fuzz", 0);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) {
        perror("fuzz input");
        abort();
    }
    return path;
}

#endif
