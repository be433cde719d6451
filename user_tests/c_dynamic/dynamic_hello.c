/* Linked dynamically against musl (musl-gcc -O2, no -static): the kernel maps
 * the interpreter its PT_INTERP names, /lib/ld-musl-x86_64.so.1, which relocates
 * the program and runs it. Checks what the loader hands over: AT_BASE is where
 * the interpreter is, AT_ENTRY the program's _start, and libc works. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

extern void _start(void);

int main(int argc, char **argv)
{
    unsigned long base = getauxval(AT_BASE);
    unsigned long entry = getauxval(AT_ENTRY);
    if (base == 0) {
        fprintf(stderr, "dynamic_hello: AT_BASE is 0\n");
        return 1;
    }
    if (entry != (unsigned long)_start) {
        fprintf(stderr, "dynamic_hello: AT_ENTRY %#lx, _start %p\n", entry, (void *)_start);
        return 2;
    }
    char *p = malloc(1 << 20);
    if (!p) {
        perror("dynamic_hello: malloc");
        return 3;
    }
    memset(p, 7, 1 << 20);
    free(p);
    printf("dynamic_hello: %d arguments, ld.so at %#lx: ok\n", argc, base);
    (void)argv;
    return 0;
}
