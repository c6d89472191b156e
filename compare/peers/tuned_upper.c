/*
 * tuned_upper: the C reference server of upcase-compare, written to be as fast as a C uppercase
 * server on Linux can reasonably be, so that beating it means something.
 *
 * Protocol (docs/PROTOCOL.md), ASCII only: every byte a-z becomes A-Z, every other byte is left
 * as it is (so Unicode text comes back wrong: the harness gives it ASCII workloads only).
 *   - UDP: each datagram is answered with its uppercase, to its sender, up to 65,507 bytes;
 *     an empty datagram gets an empty reply; as upcase, none from source ports below 1024 or
 *     from its own port (no reflection loops with echo services).
 *   - TCP: whatever arrives is uppercased and written back at once; after the client's
 *     half-close, the rest of the reply is written and the connection closed.
 *
 * Design, and why:
 *   - One thread per core (or THREADS), sharing nothing: each has its own epoll instance, its
 *     own UDP socket and its own TCP listener, all bound to the same port with SO_REUSEPORT, so
 *     the kernel spreads flows and connections over the threads and no thread ever wakes another.
 *   - UDP: up to 32 datagrams per recvmmsg, all answered by one sendmmsg. A batch shorter than 32
 *     means the queue is empty: no extra call to hear EAGAIN.
 *   - TCP connections are edge-triggered, registered once for input and output (EPOLLET): no
 *     epoll_ctl after the first. A read shorter than the buffer marks the socket drained (no
 *     extra read for EAGAIN); if the client's FIN had arrived (EPOLLRDHUP), a short read has
 *     consumed everything before it, and the connection is closed without reading the 0.
 *   - The listener is level-triggered and accepts one connection per wake-up: no accept4 that
 *     only says EAGAIN (a connection per request costs one system call less). TCP_NODELAY and
 *     O_NONBLOCK come with accept4 and from the listener, not from a call per connection.
 *   - No allocation per request or per connection: connections live in a table indexed by file
 *     descriptor, allocated once (untouched entries cost no memory). A reply the socket does not
 *     take at once waits in a 64 KiB buffer from a per-thread pool, and reading from that
 *     connection stops until it is written (backpressure: at most one buffer per connection).
 *   - A connection that keeps filling whole 64 KiB reads gets 8 of them per turn, then waits
 *     behind the others; UDP likewise gets 8 batches. Nobody starves.
 *   - Uppercasing: 16 bytes at a time with SSE2 (baseline on x86-64), a byte at a time elsewhere.
 *
 * Build: gcc -O2 -Wall -Wextra -pthread -o tuned_upper tuned_upper.c
 * Usage: tuned_upper PORT [THREADS]   (port 0: a free one; threads: default one per online core)
 * Prints "ready PORT THREADS" on stdout once every socket listens. Stop it with a signal.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define CHUNK (64 * 1024)      /* bytes per TCP read, as upcase reads */
#define UDP_BATCH 32           /* datagrams per recvmmsg / sendmmsg */
#define UDP_MAX 65536          /* larger than any UDP payload: a datagram is never cut */
#define MAX_EVENTS 256
#define TURN 8                 /* full reads (TCP) or full batches (UDP) before the others' turn */
#define BACKLOG 4096
#define POOL_KEEP 16           /* spare reply buffers a thread keeps for the next partial write */
#define MAX_THREADS 1024
#define ACCEPT_PAUSE_MS 100    /* out of descriptors: stop accepting for this long */

/* What epoll_event.data.u64 holds: a connection's descriptor, or one of these. */
#define TAG_LISTENER (1ull << 32)
#define TAG_UDP (2ull << 32)

/* One TCP connection, at table index = its descriptor. All zero when the descriptor is free. */
struct conn {
    unsigned char *pending; /* the unwritten rest of a reply (a pool buffer), or NULL */
    uint32_t pending_off;
    uint32_t pending_len;
    int32_t next;          /* the next connection in its thread's turn queue */
    uint8_t queued;        /* in the turn queue: its events wait for its turn */
    uint8_t peer_closed;   /* the client's FIN has arrived */
    uint8_t broken;        /* reset or failed: close at the next chance */
};

static struct conn *conns;
static size_t conns_len;

/* Everything one thread owns. */
struct worker {
    int epfd, listener, udp;
    uint16_t port; /* network byte order: datagrams from it are not answered */
    int listener_paused;
    struct timespec resume_at;
    int32_t queue_head, queue_tail; /* connections waiting for another turn; -1: none */
    int udp_again;                  /* the UDP socket still had datagrams at the end of its turn */
    unsigned char *chunk;           /* CHUNK bytes: each TCP read lands here */
    unsigned char *datagrams;       /* UDP_BATCH x UDP_MAX bytes */
    struct mmsghdr msgs[UDP_BATCH];    /* what recvmmsg fills */
    struct mmsghdr replies[UDP_BATCH]; /* what sendmmsg sends: those of msgs that get a reply */
    struct iovec iovs[UDP_BATCH];
    struct sockaddr_in from[UDP_BATCH];
    unsigned char *pool[POOL_KEEP];
    int pool_len;
    pthread_t thread;
};

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void upper_ascii(unsigned char *p, size_t n) {
    size_t i = 0;
#ifdef __SSE2__
    /* c - 'a' + 128, compared signed: below -128 + 26 exactly for 'a'..'z'. */
    const __m128i shift = _mm_set1_epi8((char)(128 - 'a'));
    const __m128i limit = _mm_set1_epi8((char)(-128 + 26));
    const __m128i bit = _mm_set1_epi8(0x20);
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
        __m128i lower = _mm_cmplt_epi8(_mm_add_epi8(v, shift), limit);
        _mm_storeu_si128((__m128i *)(p + i), _mm_xor_si128(v, _mm_and_si128(lower, bit)));
    }
#endif
    for (; i < n; i++)
        if ((unsigned char)(p[i] - 'a') < 26)
            p[i] ^= 0x20;
}

/* ---------------------------------------------------------------------------------------------
 * TCP connections */

static unsigned char *take_buffer(struct worker *w) {
    return w->pool_len > 0 ? w->pool[--w->pool_len] : malloc(CHUNK);
}

static void give_back(struct worker *w, unsigned char *buffer) {
    if (w->pool_len < POOL_KEEP)
        w->pool[w->pool_len++] = buffer;
    else
        free(buffer);
}

static void close_conn(struct worker *w, int fd, struct conn *c) {
    if (c->pending != NULL)
        give_back(w, c->pending);
    /* Cleared before close: the moment the descriptor is free, another thread may accept a
     * connection with the same number and take this entry. */
    memset(c, 0, sizeof *c);
    close(fd); /* also takes it out of the epoll set */
}

static void queue_turn(struct worker *w, int fd, struct conn *c) {
    c->queued = 1;
    c->next = -1;
    if (w->queue_tail >= 0)
        conns[w->queue_tail].next = fd;
    else
        w->queue_head = fd;
    w->queue_tail = fd;
}

/* Writes what is pending. 0: all written; 1: the socket is full again; -1: failed. */
static int flush_pending(struct worker *w, int fd, struct conn *c) {
    for (;;) {
        size_t left = c->pending_len - c->pending_off;
        ssize_t sent = send(fd, c->pending + c->pending_off, left, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
        }
        if ((size_t)sent < left) {
            c->pending_off += (uint32_t)sent;
            return 1;
        }
        give_back(w, c->pending);
        c->pending = NULL;
        c->pending_off = c->pending_len = 0;
        return 0;
    }
}

/* Writes a reply. 0: all written; 1: the rest is pending; -1: failed.
 * A send that takes part of the reply has found the socket full, and the kernel has noted that
 * a writer waits (SOCK_NOSPACE): EPOLLOUT will come when there is room, so there is no point in
 * asking again now only to hear EAGAIN. */
static int write_reply(struct worker *w, int fd, struct conn *c, const unsigned char *data, size_t n) {
    size_t off = 0;
    for (;;) {
        ssize_t sent = send(fd, data + off, n - off, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -1;
            break;
        }
        off += (size_t)sent;
        break;
    }
    if (off == n)
        return 0;
    c->pending = take_buffer(w);
    if (c->pending == NULL)
        return -1;
    memcpy(c->pending, data + off, n - off);
    c->pending_off = 0;
    c->pending_len = (uint32_t)(n - off);
    return 1;
}

/* Serves one connection for one turn: finishes a pending reply, then reads, uppercases and
 * writes back until the socket is drained, the reply is stuck, or the turn is over. */
static void serve(struct worker *w, int fd, struct conn *c, uint32_t events) {
    if (c->broken) {
        close_conn(w, fd, c);
        return;
    }
    if (c->pending != NULL) {
        if (!(events & EPOLLOUT))
            return; /* input while a reply is stuck: read it once the reply is out */
        int flushed = flush_pending(w, fd, c);
        if (flushed != 0) {
            if (flushed < 0)
                close_conn(w, fd, c);
            return;
        }
        /* Fall through: reading stopped while the reply was stuck; input may be waiting. */
    } else if (!(events & (EPOLLIN | EPOLLRDHUP))) {
        return; /* writable, with nothing to write: the first event after accept */
    }
    for (int reads = 0; reads < TURN; reads++) {
        ssize_t n = recv(fd, w->chunk, CHUNK, 0);
        if (n > 0) {
            upper_ascii(w->chunk, (size_t)n);
            int written = write_reply(w, fd, c, w->chunk, (size_t)n);
            if (written < 0)
                close_conn(w, fd, c);
            if (written != 0)
                return;
            if (n < CHUNK) {
                /* Drained. With the client's FIN in, everything before it has been read. */
                if (c->peer_closed)
                    close_conn(w, fd, c);
                return;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) {
            reads--;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        close_conn(w, fd, c); /* end of the stream, nothing pending; or a reset */
        return;
    }
    queue_turn(w, fd, c); /* still full reads: the others first */
}

static void on_conn_event(struct worker *w, int fd, uint32_t events) {
    struct conn *c = &conns[fd];
    if (events & EPOLLRDHUP)
        c->peer_closed = 1;
    if (events & (EPOLLERR | EPOLLHUP))
        c->broken = 1;
    if (!c->queued) /* a queued connection is served in its turn, with what was noted here */
        serve(w, fd, c, events);
}

static void serve_queue(struct worker *w) {
    int32_t fd = w->queue_head;
    w->queue_head = w->queue_tail = -1; /* those served now may queue again, behind */
    while (fd >= 0) {
        struct conn *c = &conns[fd];
        int32_t next = c->next;
        c->queued = 0;
        serve(w, fd, c, EPOLLIN);
        fd = next;
    }
}

static void on_accept(struct worker *w) {
    int fd = accept4(w->listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* Level-triggered, the listener would wake us at once, forever: pause it. */
            perror("accept4 (pausing accepts)");
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listener, NULL);
            w->listener_paused = 1;
            clock_gettime(CLOCK_MONOTONIC, &w->resume_at);
            w->resume_at.tv_nsec += ACCEPT_PAUSE_MS * 1000000L;
            if (w->resume_at.tv_nsec >= 1000000000L) {
                w->resume_at.tv_sec++;
                w->resume_at.tv_nsec -= 1000000000L;
            }
        }
        return; /* EAGAIN: another thread's; ECONNABORTED, EINTR: the next wake-up */
    }
    if ((size_t)fd >= conns_len) {
        close(fd);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = (uint64_t)fd};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        perror("epoll_ctl add");
        close(fd);
    }
}

static void maybe_resume_accepting(struct worker *w) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec < w->resume_at.tv_sec ||
        (now.tv_sec == w->resume_at.tv_sec && now.tv_nsec < w->resume_at.tv_nsec))
        return;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_LISTENER};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->listener, &ev) == 0)
        w->listener_paused = 0;
}

/* ---------------------------------------------------------------------------------------------
 * UDP */

static void send_batch(struct worker *w, int count) {
    int sent = 0;
    while (sent < count) {
        int n = sendmmsg(w->udp, w->replies + sent, (unsigned)(count - sent), 0);
        if (n > 0) {
            sent += n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return; /* the send buffer is full: the rest are lost, as datagrams may be */
        } else {
            sent++; /* this datagram's reply cannot be sent: skip it, answer the others */
        }
    }
}

static void on_udp(struct worker *w) {
    for (int batches = 0; batches < TURN; batches++) {
        for (int i = 0; i < UDP_BATCH; i++) {
            w->iovs[i].iov_len = UDP_MAX;
            w->msgs[i].msg_hdr.msg_namelen = sizeof w->from[i];
        }
        int n = recvmmsg(w->udp, w->msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* EAGAIN: drained */
        int replies = 0;
        for (int i = 0; i < n; i++) {
            /* As upcase does (docs/PROTOCOL.md): a datagram from a port below 1024 or from our
             * own port may be spoofed to start a loop with an echo service; no reply. */
            uint16_t from = ntohs(w->from[i].sin_port);
            if (from < 1024 || w->from[i].sin_port == w->port)
                continue;
            upper_ascii(w->iovs[i].iov_base, w->msgs[i].msg_len);
            w->iovs[i].iov_len = w->msgs[i].msg_len;
            w->replies[replies++] = w->msgs[i];
        }
        send_batch(w, replies);
        if (n < UDP_BATCH)
            return; /* a short batch: the queue is empty */
    }
    w->udp_again = 1;
}

/* ---------------------------------------------------------------------------------------------
 * Threads and sockets */

static void *run(void *arg) {
    struct worker *w = arg;
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int timeout = w->queue_head >= 0 || w->udp_again ? 0 : w->listener_paused ? ACCEPT_PAUSE_MS : -1;
        int n = epoll_wait(w->epfd, events, MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            uint64_t data = events[i].data.u64;
            if (data == TAG_LISTENER)
                on_accept(w);
            else if (data == TAG_UDP)
                on_udp(w);
            else
                on_conn_event(w, (int)data, events[i].events);
        }
        if (w->udp_again) {
            w->udp_again = 0;
            on_udp(w);
        }
        if (w->queue_head >= 0)
            serve_queue(w);
        if (w->listener_paused)
            maybe_resume_accepting(w);
    }
    return NULL;
}

/* A socket of `type` on 127.0.0.1:port with SO_REUSEPORT, or -1 (errno set) if bind fails. */
static int bound_socket(int type, int port) {
    int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        die("setsockopt SO_REUSEADDR, SO_REUSEPORT");
    /* Accepted connections inherit it from the listener. */
    if (type == SOCK_STREAM && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        die("setsockopt TCP_NODELAY");
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

/* Binds thread 0's TCP listener and UDP socket to one port free for both; returns the port. */
static int bind_first(struct worker *w, int port) {
    for (int attempt = 0; attempt < 20; attempt++) {
        w->listener = bound_socket(SOCK_STREAM, port);
        if (w->listener < 0)
            die("bind tcp");
        w->udp = bound_socket(SOCK_DGRAM, local_port(w->listener));
        if (w->udp >= 0)
            return local_port(w->listener);
        if (port != 0)
            die("bind udp");
        close(w->listener);
    }
    die("bind udp (no port free for both tcp and udp)");
    return -1;
}

static void set_up(struct worker *w) {
    if (listen(w->listener, BACKLOG) < 0)
        die("listen");
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0)
        die("epoll_create1");
    struct epoll_event listener = {.events = EPOLLIN, .data.u64 = TAG_LISTENER};
    struct epoll_event udp = {.events = EPOLLIN | EPOLLET, .data.u64 = TAG_UDP};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->listener, &listener) < 0 ||
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->udp, &udp) < 0)
        die("epoll_ctl");
    w->queue_head = w->queue_tail = -1;
    w->chunk = malloc(CHUNK);
    w->datagrams = malloc((size_t)UDP_BATCH * UDP_MAX);
    if (w->chunk == NULL || w->datagrams == NULL)
        die("malloc");
    for (int i = 0; i < UDP_BATCH; i++) {
        w->iovs[i].iov_base = w->datagrams + (size_t)i * UDP_MAX;
        w->msgs[i].msg_hdr.msg_iov = &w->iovs[i];
        w->msgs[i].msg_hdr.msg_iovlen = 1;
        w->msgs[i].msg_hdr.msg_name = &w->from[i];
    }
}

static long parse(const char *text, long min, long max, const char *what) {
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max) {
        fprintf(stderr, "bad %s: %s (a whole number from %ld to %ld)\n", what, text, min, max);
        exit(2);
    }
    return value;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s PORT [THREADS]\n", argv[0]);
        return 2;
    }
    int port = (int)parse(argv[1], 0, 65535, "port");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = argc == 3 ? (int)parse(argv[2], 1, MAX_THREADS, "thread count")
                            : (int)(cores < 1 ? 1 : cores > MAX_THREADS ? MAX_THREADS : cores);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0) { /* as many connections as allowed */
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
        getrlimit(RLIMIT_NOFILE, &files);
    }
    conns_len = files.rlim_cur == RLIM_INFINITY || files.rlim_cur > (1u << 24) ? (1u << 24) : files.rlim_cur;
    conns = calloc(conns_len, sizeof *conns); /* pages are touched only as descriptors are used */
    struct worker *workers = calloc((size_t)threads, sizeof *workers);
    if (conns == NULL || workers == NULL)
        die("calloc");

    port = bind_first(&workers[0], port);
    for (int i = 1; i < threads; i++) {
        workers[i].listener = bound_socket(SOCK_STREAM, port);
        workers[i].udp = bound_socket(SOCK_DGRAM, port);
        if (workers[i].listener < 0 || workers[i].udp < 0)
            die("bind (SO_REUSEPORT)");
    }
    for (int i = 0; i < threads; i++) {
        workers[i].port = htons((uint16_t)port);
        set_up(&workers[i]);
    }
    for (int i = 1; i < threads; i++)
        if (pthread_create(&workers[i].thread, NULL, run, &workers[i]) != 0)
            die("pthread_create");
    printf("ready %d %d\n", port, threads);
    fflush(stdout);
    run(&workers[0]);
    return 0;
}
