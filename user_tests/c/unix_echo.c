/* AF_UNIX sockets end to end, as a C program sees them through musl: a stream echo
 * server under epoll serving 8 clients at once (each a forked child that sends 16
 * messages and checks every echo), a pipe's read end passed with SCM_RIGHTS and read
 * through, and datagram boundaries (and a truncated datagram) over a socketpair. The
 * socket is bound in a fresh directory under /tmp, removed at the end; an alarm bounds
 * the whole run. Built with musl-gcc -static -O2. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLIENTS 8
#define MESSAGES 16

static char dir[64];
static struct sockaddr_un addr;
static socklen_t addr_len;
/* Set in the clients: only the parent removes the socket and its directory. */
static int in_child;

static void cleanup(void)
{
    if (in_child)
        return;
    if (addr.sun_path[0])
        unlink(addr.sun_path);
    if (dir[0])
        rmdir(dir);
}

/* Reports what failed (with errno's text when set) and exits with 1. */
static void die(const char *what)
{
    fprintf(stderr, "unix_echo: %s: %s\n", what, errno ? strerror(errno) : "wrong result");
    cleanup();
    exit(1);
}

#define CHECK(cond, what)                                                                  \
    do {                                                                                   \
        errno = 0;                                                                         \
        if (!(cond))                                                                       \
            die(what);                                                                     \
    } while (0)

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            /* A non-blocking server socket whose client is slow to read. */
            usleep(1000);
            continue;
        }
        if (n <= 0)
            die("write");
        buf += n;
        len -= (size_t)n;
    }
}

static void read_full(int fd, char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = read(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die(n == 0 ? "read: early end of file" : "read");
        buf += n;
        len -= (size_t)n;
    }
}

/* Message m of client i: its text and a tail of x's of a length of its own. */
static size_t message(int i, int m, char *buf, size_t size)
{
    int n = snprintf(buf, size, "client %d message %d ", i, m);
    size_t len = (size_t)n + (size_t)(i * 53 + m * 7);
    memset(buf + n, 'x', len - (size_t)n);
    return len;
}

/* A client: connects, sends each message and checks its echo. Runs in a child. */
static int client(int i)
{
    char msg[2048], echo[2048];
    alarm(20);
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(c >= 0, "client socket");
    CHECK(connect(c, (struct sockaddr *)&addr, addr_len) == 0, "client connect");
    for (int m = 0; m < MESSAGES; m++) {
        size_t len = message(i, m, msg, sizeof msg);
        write_all(c, msg, len);
        read_full(c, echo, len);
        if (memcmp(msg, echo, len) != 0) {
            fprintf(stderr, "unix_echo: client %d message %d: the echo differs\n", i, m);
            return 1;
        }
    }
    close(c);
    return 0;
}

/* The echo server under epoll until every client hung up; returns the bytes echoed. */
static size_t serve(int listener)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0, "epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev) == 0, "epoll_ctl listener");
    int accepted = 0, finished = 0;
    size_t echoed = 0;
    while (finished < CLIENTS) {
        struct epoll_event evs[16];
        int n = epoll_wait(ep, evs, 16, 10000);
        if (n < 0 && errno == EINTR)
            continue;
        CHECK(n > 0, "epoll_wait (nothing ready for 10 s)");
        for (int k = 0; k < n; k++) {
            int fd = evs[k].data.fd;
            if (fd == listener) {
                int c;
                while ((c = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) == 0, "epoll_ctl client");
                    accepted++;
                }
                if (errno != EAGAIN)
                    die("accept4");
                continue;
            }
            char buf[4096];
            ssize_t got = read(fd, buf, sizeof buf);
            if (got == 0) {
                close(fd);
                finished++;
            } else if (got > 0) {
                write_all(fd, buf, (size_t)got);
                echoed += (size_t)got;
            } else if (errno != EAGAIN) {
                die("server read");
            }
        }
    }
    CHECK(accepted == CLIENTS, "accepted connections");
    close(ep);
    return echoed;
}

static void echo_server(void)
{
    strcpy(dir, "/tmp/unix_echo-XXXXXX");
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s/echo.sock", dir);
    addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(addr.sun_path) + 1);
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK(l >= 0, "socket");
    CHECK(bind(l, (struct sockaddr *)&addr, addr_len) == 0, "bind");
    struct stat st;
    CHECK(stat(addr.sun_path, &st) == 0 && S_ISSOCK(st.st_mode), "the bound path is a socket");
    CHECK(listen(l, CLIENTS) == 0, "listen");
    pid_t pids[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        pids[i] = fork();
        CHECK(pids[i] >= 0, "fork");
        if (pids[i] == 0) {
            in_child = 1;
            close(l);
            _exit(client(i));
        }
    }
    size_t echoed = serve(l);
    size_t expected = 0;
    char msg[2048];
    for (int i = 0; i < CLIENTS; i++)
        for (int m = 0; m < MESSAGES; m++)
            expected += message(i, m, msg, sizeof msg);
    CHECK(echoed == expected, "bytes echoed");
    for (int i = 0; i < CLIENTS; i++) {
        int status;
        CHECK(waitpid(pids[i], &status, 0) == pids[i], "waitpid");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "unix_echo: client %d: status %#x\n", i, status);
            cleanup();
            exit(1);
        }
    }
    close(l);
    cleanup();
}

static void pass_descriptor(void)
{
    int sv[2], p[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    CHECK(pipe(p) == 0, "pipe");
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof control);
    char byte = 'F';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &p[0], sizeof(int));
    CHECK(sendmsg(sv[0], &msg, 0) == 1, "sendmsg SCM_RIGHTS");
    CHECK(close(p[0]) == 0, "close the sent descriptor");

    memset(&control, 0, sizeof control);
    byte = 0;
    msg.msg_controllen = sizeof control.buf;
    CHECK(recvmsg(sv[1], &msg, MSG_CMSG_CLOEXEC) == 1 && byte == 'F', "recvmsg");
    CHECK(!(msg.msg_flags & MSG_CTRUNC), "MSG_CTRUNC");
    c = CMSG_FIRSTHDR(&msg);
    CHECK(c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
              c->cmsg_len == CMSG_LEN(sizeof(int)),
          "the SCM_RIGHTS message");
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC, "MSG_CMSG_CLOEXEC");
    const char text[] = "through the passed descriptor";
    char got[sizeof text];
    write_all(p[1], text, sizeof text);
    read_full(fd, got, sizeof text);
    CHECK(memcmp(got, text, sizeof text) == 0, "data through the passed descriptor");
    close(p[1]);
    CHECK(read(fd, got, sizeof got) == 0, "end of file through the passed descriptor");
    close(fd);
    close(sv[0]);
    close(sv[1]);
}

static void datagram_boundaries(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair dgram");
    const char *sent[] = {"one", "two!", "", "three!!"};
    for (int i = 0; i < 4; i++)
        CHECK(send(sv[0], sent[i], strlen(sent[i]), 0) == (ssize_t)strlen(sent[i]), "send datagram");
    for (int i = 0; i < 4; i++) {
        char buf[64];
        ssize_t n = recv(sv[1], buf, sizeof buf, MSG_DONTWAIT);
        CHECK(n == (ssize_t)strlen(sent[i]) && memcmp(buf, sent[i], (size_t)n) == 0, "datagram boundary");
    }
    CHECK(recv(sv[1], (char[8]){0}, 8, MSG_DONTWAIT) < 0 && errno == EAGAIN, "an empty queue");
    CHECK(send(sv[0], "0123456789", 10, 0) == 10, "send long datagram");
    char buf[4];
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    CHECK(recvmsg(sv[1], &msg, 0) == 4 && memcmp(buf, "0123", 4) == 0, "truncated datagram");
    CHECK(msg.msg_flags == MSG_TRUNC, "MSG_TRUNC");
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    alarm(60);
    signal(SIGPIPE, SIG_IGN);
    echo_server();
    pass_descriptor();
    datagram_boundaries();
    printf("unix_echo: %d clients x %d messages echoed under epoll, SCM_RIGHTS and datagram boundaries ok\n",
           CLIENTS, MESSAGES);
    return 0;
}
