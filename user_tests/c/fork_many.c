/* Forks 200 children that each exit with a distinct status, reaps them all with
 * waitpid and checks each status: process creation, exit and reaping at volume.
 * Built with musl-gcc -static -O2. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 200

int main(void)
{
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        if (pids[i] < 0) {
            perror("fork_many: fork");
            return 1;
        }
        if (pids[i] == 0)
            _exit(i % 200);
    }
    for (int i = 0; i < N; i++) {
        int status;
        if (waitpid(pids[i], &status, 0) != pids[i]) {
            perror("fork_many: waitpid");
            return 1;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != i % 200) {
            fprintf(stderr, "fork_many: child %d: status %#x, expected exit %d\n", i, status, i % 200);
            return 1;
        }
    }
    if (waitpid(-1, NULL, WNOHANG) != -1) {
        fprintf(stderr, "fork_many: a child is left after reaping all\n");
        return 1;
    }
    printf("fork_many: %d children reaped\n", N);
    return 0;
}
