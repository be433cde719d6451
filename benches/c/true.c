/* The static `true` of vm_micro's exec_true_static (musl-gcc -static): a process that
 * starts and exits 0 with no loader, beside Debian's dynamically linked /usr/bin/true. */
int main(void)
{
    return 0;
}
