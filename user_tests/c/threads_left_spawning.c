/* Leaves behind a process whose three threads keep creating detached threads (for two
 * seconds at most), and exits at once. As init (`cargo xtask exec`) it exits while
 * those threads are being created and exiting: the kernel must kill and reap them all
 * before its leak check, which must find every kernel stack back. In the user suite
 * it simply passes. Built with musl-gcc -static -O2. */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static void *work(void *arg)
{
    (void)arg;
    for (volatile int i = 0; i < 100000; i++)
        ;
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *spawner(void *arg)
{
    double end = *(double *)arg;
    while (now() < end) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, work, 0))
            sched_yield();
    }
    return 0;
}

int main(void)
{
    static double end;
    pid_t pid = fork();
    if (pid < 0) {
        perror("threads_left_spawning: fork");
        return 1;
    }
    if (pid == 0) {
        end = now() + 2;
        pthread_t t;
        for (int k = 0; k < 3; k++)
            pthread_create(&t, 0, spawner, &end);
        sleep(3);
        _exit(0);
    }
    for (int i = 0; i < 20; i++)
        sched_yield();
    printf("threads_left_spawning: started\n");
    return 0;
}
