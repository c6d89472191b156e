/*
 * epoll_upper: the simple C reference of upcase-compare (compare/peers/tuned_upper.c is the strong one).
 *
 * One thread, one epoll instance (level-triggered), serving the uppercase protocol on
 * 127.0.0.1:PORT over both UDP and TCP:
 *   - UDP: one socket; each datagram is answered with its uppercase (recvfrom/sendto, no
 *     batching), up to 65,535 bytes.
 *   - TCP: nonblocking sockets; whatever arrives is uppercased and written back. A partial write
 *     keeps the rest in a per-connection buffer and stops reading from that connection until it
 *     has drained (backpressure: one read's worth of memory per connection at most). When the
 *     client half-closes, the pending reply is finished and the connection closed.
 *
 * It uppercases ASCII only (a-z), 16 bytes at a time: far cheaper than Unicode, and wrong for any
 * other text. That flatters it in the comparison; upcase-compare only gives it ASCII workloads.
 *
 * Build: gcc -O2 -Wall -Wextra -o epoll_upper epoll_upper.c
 * Usage: epoll_upper PORT    (0: a free port; prints "ready PORT" on stdout once listening)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)
#define UDP_MAX 65535
#define UDP_BATCH 64 /* datagrams per wake-up, so TCP is not starved */
#define BACKLOG 4096
#define MAX_EVENTS 256
#define READS_PER_WAKEUP 16 /* TCP chunks per wake-up, so one busy stream cannot starve the rest */

/* One open TCP connection. Idle, it is just this struct: the pending buffer exists only while
 * a reply is partly written. */
struct conn {
    int fd;
    char *pending; /* the unwritten rest of a reply, or NULL */
    size_t pending_len;
    size_t pending_off;
};

/* Tags kept in epoll_event.data.u64 for the two listening sockets; connections store a pointer. */
#define TAG_LISTEN 1
#define TAG_UDP 2

static int epfd;
static unsigned char buffer[READ_CHUNK > UDP_MAX ? READ_CHUNK : UDP_MAX];

static void die(const char *what) {
    perror(what);
    exit(2);
}

static inline unsigned char upper(unsigned char c) {
    return (unsigned char)(c - 'a') < 26 ? c - 32 : c;
}

/* In blocks of 64 bytes: gcc -O2 turns the fixed-length inner loop into SSE2 (16 bytes at a time),
 * which it does not do for the plain loop. */
static void upper_ascii(unsigned char *p, size_t n) {
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int j = 0; j < 64; j++)
            p[i + j] = upper(p[i + j]);
    for (; i < n; i++)
        p[i] = upper(p[i]);
}

static void set_interest(struct conn *c, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        perror("epoll_ctl mod");
}

static void close_conn(struct conn *c) {
    close(c->fd); /* also removes it from the epoll set */
    free(c->pending);
    free(c);
}

/* Writes what is pending. Returns 0 when all is written, 1 when some is left, -1 on error. */
static int flush_pending(struct conn *c) {
    while (c->pending_off < c->pending_len) {
        ssize_t n = send(c->fd, c->pending + c->pending_off, c->pending_len - c->pending_off,
                         MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
        }
        c->pending_off += (size_t)n;
    }
    free(c->pending);
    c->pending = NULL;
    c->pending_len = c->pending_off = 0;
    return 0;
}

/* Writes `n` bytes of `data`; keeps whatever the socket does not take. Same returns as above. */
static int write_reply(struct conn *c, const unsigned char *data, size_t n) {
    size_t off = 0;
    while (off < n) {
        ssize_t w = send(c->fd, data + off, n - off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -1;
            break;
        }
        off += (size_t)w;
    }
    if (off == n)
        return 0;
    c->pending = malloc(n - off);
    if (c->pending == NULL)
        return -1;
    memcpy(c->pending, data + off, n - off);
    c->pending_len = n - off;
    c->pending_off = 0;
    return 1;
}

/* Reads, uppercases and writes back, a few chunks per wake-up while full chunks keep coming. */
static void on_conn_readable(struct conn *c) {
    for (int chunks = 0; chunks < READS_PER_WAKEUP; chunks++) {
        ssize_t n = recv(c->fd, buffer, READ_CHUNK, 0);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                close_conn(c);
            return;
        }
        if (n == 0) { /* half-closed, and nothing is pending (we do not read while it is) */
            close_conn(c);
            return;
        }
        upper_ascii(buffer, (size_t)n);
        switch (write_reply(c, buffer, (size_t)n)) {
        case 0:
            break;
        case 1:
            set_interest(c, EPOLLOUT); /* stop reading until the reply is out */
            return;
        default:
            close_conn(c);
            return;
        }
        if ((size_t)n < READ_CHUNK)
            return; /* most likely all there was */
    }
}

static void on_conn_writable(struct conn *c) {
    switch (flush_pending(c)) {
    case 0:
        set_interest(c, EPOLLIN | EPOLLRDHUP);
        break;
    case 1:
        break;
    default:
        close_conn(c);
    }
}

static void on_accept(int listener) {
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                perror("accept4"); /* EMFILE and the like: log and carry on */
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            perror("epoll_ctl add");
            close(fd);
            free(c);
        }
    }
}

static void on_udp(int sock) {
    for (int i = 0; i < UDP_BATCH; i++) {
        struct sockaddr_storage from;
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(sock, buffer, UDP_MAX, 0, (struct sockaddr *)&from, &len);
        if (n < 0)
            return; /* EAGAIN: drained; anything else: the next datagram may do better */
        upper_ascii(buffer, (size_t)n);
        sendto(sock, buffer, (size_t)n, 0, (struct sockaddr *)&from, len); /* a loss is a loss */
    }
}

/* A socket of `type` bound to 127.0.0.1:port, or -1 (errno set) if the bind fails. */
static int bound_socket(int type, int port) {
    int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        die("SO_REUSEADDR");
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static int local_port(int fd) {
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0)
        die("getsockname");
    return ntohs(addr.sin_port);
}

static void watch(int fd, uint64_t tag) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        die("epoll_ctl");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    if (port < 0 || port > 65535 || (port == 0 && strcmp(argv[1], "0") != 0)) {
        fprintf(stderr, "bad port: %s\n", argv[1]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0) { /* as many connections as allowed */
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1");
    /* TCP and UDP on the same port; port 0 picks one that is free for both. */
    int listener = -1, udp = -1;
    for (int attempt = 0; attempt < 20 && udp < 0; attempt++) {
        if (listener >= 0)
            close(listener);
        listener = bound_socket(SOCK_STREAM, port);
        if (listener < 0)
            die("bind tcp");
        udp = bound_socket(SOCK_DGRAM, local_port(listener));
        if (udp < 0 && port != 0)
            die("bind udp");
    }
    if (udp < 0)
        die("bind udp");
    port = local_port(listener);
    if (listen(listener, BACKLOG) < 0)
        die("listen");
    watch(listener, TAG_LISTEN);
    watch(udp, TAG_UDP);
    printf("ready %d\n", port);
    fflush(stdout);

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            struct epoll_event *ev = &events[i];
            if (ev->data.u64 == TAG_LISTEN) {
                on_accept(listener);
            } else if (ev->data.u64 == TAG_UDP) {
                on_udp(udp);
            } else {
                struct conn *c = ev->data.ptr;
                if (c->pending != NULL) {
                    if (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                        on_conn_writable(c);
                } else if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
                    on_conn_readable(c);
                }
            }
        }
    }
}
