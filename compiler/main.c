/* main.c - the netc driver: reads the command line and runs the phases. */
#include <stdio.h>
#include <string.h>

#include "netc.h"

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "netc: driver not yet assembled\n");
    return 1;
}
