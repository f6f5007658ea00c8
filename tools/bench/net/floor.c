// The floor of the network benchmarks: the cheapest server this kernel
// allows for the two shapes, so that every ratio to Go or nginx can be read
// against what no user-space server can beat on the same machine.
//
//     floor echo|http uring|epoll [addr]      (addr defaults to 127.0.0.1:0)
//
// It prints "floor listening on ADDR" once the socket listens, then serves
// until killed. One thread, no runtime, no allocation after start:
//
// - echo: every byte received is sent straight back on the same socket.
// - http: every request is a head without a body (wrk's GET); each
//   "\r\n\r\n" seen on a connection answers one fixed 200 response of the
//   same size as the weft, Go and nginx ones (a fixed Date, no parsing, no
//   timeouts, no limits). Requests split across reads are found through a
//   per-connection match state. A pipelined batch is answered in one send.
//
// Backends, both with TCP_NODELAY on every connection:
// - uring: one io_uring (SINGLE_ISSUER | DEFER_TASKRUN, registered ring fd),
//   multishot accept, multishot receive into a provided-buffer ring, and the
//   direct send system call (cheaper than a ring send on loopback).
// - epoll: level-triggered epoll_wait, one read per readiness, one write.
//
// A send that would not complete at once ends the program with an error
// rather than lose bytes: on loopback with these message sizes the socket
// buffer always has room, and a benchmark peer must fail loudly, not drop.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static const char k_response[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 13\r\n"
    "Date: Tue, 24 Nov 2026 17:00:00 GMT\r\n"
    "\r\n"
    "Hello, World!";
enum { k_response_len = sizeof k_response - 1 };

enum { k_max_fds = 1 << 16, k_bufs = 4096, k_buf_size = 4096, k_out_size = 1 << 18 };

static int g_http;
static unsigned char g_match[k_max_fds];  // per fd: bytes of "\r\n\r\n" matched so far
static char g_out[k_out_size];

static void die(const char* what, int err) {
    fprintf(stderr, "floor: %s: %s\n", what, strerror(err));
    exit(1);
}

static void send_all_now(int fd, const char* p, size_t n) {
    ssize_t r = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r == (ssize_t)n) return;
    if (r < 0 && (errno == ECONNRESET || errno == EPIPE)) return;  // the peer left
    die("send did not complete at once", r < 0 ? errno : EAGAIN);
}

// Answers what one read brought on fd: the bytes back (echo) or one
// response per request head completed in them (http).
static void serve(int fd, const char* p, size_t n) {
    if (!g_http) {
        send_all_now(fd, p, n);
        return;
    }
    unsigned m = g_match[fd];
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        char want = (m & 1) ? '\n' : '\r';
        if (p[i] == want) {
            m++;
        } else {
            m = p[i] == '\r' ? 1 : 0;
        }
        if (m == 4) {
            m = 0;
            if (out + k_response_len > sizeof g_out) {
                send_all_now(fd, g_out, out);
                out = 0;
            }
            memcpy(g_out + out, k_response, k_response_len);
            out += k_response_len;
        }
    }
    g_match[fd] = (unsigned char)m;
    if (out) send_all_now(fd, g_out, out);
}

static void on_accept(int fd) {
    if (fd >= k_max_fds) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    g_match[fd] = 0;
}

// ---- io_uring ----

static struct io_uring g_ring;
static struct io_uring_buf_ring* g_br;
static char* g_bufs;

static struct io_uring_sqe* sqe(void) {
    struct io_uring_sqe* s = io_uring_get_sqe(&g_ring);
    if (!s) {
        io_uring_submit(&g_ring);
        s = io_uring_get_sqe(&g_ring);
    }
    return s;
}

// user_data: 0 for the listener, fd << 1 | 1 for a connection.
static void arm_accept(int listener) {
    struct io_uring_sqe* s = sqe();
    io_uring_prep_multishot_accept(s, listener, NULL, NULL, 0);
    io_uring_sqe_set_data64(s, 0);
}

static void arm_recv(int fd) {
    struct io_uring_sqe* s = sqe();
    io_uring_prep_recv_multishot(s, fd, NULL, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = 0;
    io_uring_sqe_set_data64(s, (uint64_t)fd << 1 | 1);
}

static void run_uring(int listener) {
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                                         IORING_SETUP_CQSIZE,
                                .cq_entries = 16384};
    int r = io_uring_queue_init_params(4096, &g_ring, &p);
    if (r < 0) die("io_uring_queue_init_params", -r);
    io_uring_register_ring_fd(&g_ring);
    g_br = mmap(NULL, k_bufs * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    g_bufs = malloc((size_t)k_bufs * k_buf_size);
    if (g_br == MAP_FAILED || !g_bufs) die("buffers", ENOMEM);
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)g_br, .ring_entries = k_bufs, .bgid = 0};
    if ((r = io_uring_register_buf_ring(&g_ring, &reg, 0)) != 0) die("io_uring_register_buf_ring", -r);
    io_uring_buf_ring_init(g_br);
    for (int i = 0; i < k_bufs; i++)
        io_uring_buf_ring_add(g_br, g_bufs + (size_t)i * k_buf_size, k_buf_size, i,
                              io_uring_buf_ring_mask(k_bufs), i);
    io_uring_buf_ring_advance(g_br, k_bufs);
    arm_accept(listener);
    for (;;) {
        r = io_uring_submit_and_wait(&g_ring, 1);
        if (r < 0 && r != -EINTR) die("io_uring_submit_and_wait", -r);
        struct io_uring_cqe* c;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&g_ring, head, c) {
            seen++;
            uint64_t d = c->user_data;
            int more = c->flags & IORING_CQE_F_MORE;
            if (d == 0) {
                if (c->res >= 0) {
                    on_accept(c->res);
                    if (c->res < k_max_fds) arm_recv(c->res);
                }
                if (!more) arm_accept(listener);
                continue;
            }
            int fd = (int)(d >> 1);
            if (c->res == -ENOBUFS) {  // all buffers out: this loop returns them, so arm again
                if (!more) arm_recv(fd);
                continue;
            }
            if (c->res <= 0) {  // end of stream or error: the receive is over
                close(fd);
                continue;
            }
            unsigned bid = c->flags >> IORING_CQE_BUFFER_SHIFT;
            char* b = g_bufs + (size_t)bid * k_buf_size;
            serve(fd, b, (size_t)c->res);
            io_uring_buf_ring_add(g_br, b, k_buf_size, bid, io_uring_buf_ring_mask(k_bufs), 0);
            io_uring_buf_ring_advance(g_br, 1);
            if (!more) arm_recv(fd);
        }
        io_uring_cq_advance(&g_ring, seen);
    }
}

// ---- epoll ----

static void run_epoll(int listener) {
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1", errno);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    static struct epoll_event evs[512];
    static char buf[65536];
    for (;;) {
        int n = epoll_wait(ep, evs, 512, -1);
        if (n < 0 && errno != EINTR) die("epoll_wait", errno);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == listener) {
                int c;
                while ((c = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    on_accept(c);
                    if (c >= k_max_fds) continue;
                    struct epoll_event e = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
                }
                continue;
            }
            ssize_t r = read(fd, buf, sizeof buf);
            if (r > 0) {
                serve(fd, buf, (size_t)r);
            } else if (r == 0 || errno != EAGAIN) {
                close(fd);  // also leaves the epoll set
            }
        }
    }
}

int main(int argc, char** argv) {
    if (argc < 3 || (strcmp(argv[1], "echo") != 0 && strcmp(argv[1], "http") != 0) ||
        (strcmp(argv[2], "uring") != 0 && strcmp(argv[2], "epoll") != 0)) {
        fprintf(stderr, "usage: floor echo|http uring|epoll [127.0.0.1:port]\n");
        return 2;
    }
    g_http = strcmp(argv[1], "http") == 0;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct sockaddr_in a = {.sin_family = AF_INET};
    const char* addr = argc > 3 ? argv[3] : "127.0.0.1:0";
    const char* colon = strrchr(addr, ':');
    char host[64];
    if (!colon || (size_t)(colon - addr) >= sizeof host) die("address", EINVAL);
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) die("address", EINVAL);
    a.sin_port = htons((uint16_t)atoi(colon + 1));
    int listener = socket(AF_INET, SOCK_STREAM | (strcmp(argv[2], "epoll") == 0 ? SOCK_NONBLOCK : 0), 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listener, (struct sockaddr*)&a, sizeof a) != 0) die("bind", errno);
    if (listen(listener, 4096) != 0) die("listen", errno);
    socklen_t len = sizeof a;
    getsockname(listener, (struct sockaddr*)&a, &len);
    printf("floor listening on %s:%d\n", host, ntohs(a.sin_port));
    fflush(stdout);
    if (strcmp(argv[2], "uring") == 0) {
        run_uring(listener);
    } else {
        run_epoll(listener);
    }
}
