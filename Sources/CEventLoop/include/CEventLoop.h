// epoll and eventfd for HTTPServer's I/O loops. Glibc's Swift module does not export
// <sys/epoll.h> or <sys/eventfd.h>, and struct epoll_event is packed on x86-64, so the loop sees
// an unpacked copy (`cel_event`) instead of the kernel's layout.
#ifndef CEVENTLOOP_H
#define CEVENTLOOP_H

#include <stdint.h>

#ifdef __linux__
#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/inotify.h>
#include <poll.h>
#include <unistd.h>

/// One readiness report: the epoll event bits and the token given at registration.
typedef struct {
    uint32_t events;
    uint64_t token;
} cel_event;

static const uint32_t CEL_IN = EPOLLIN;
static const uint32_t CEL_OUT = EPOLLOUT;
static const uint32_t CEL_ERR = EPOLLERR;
static const uint32_t CEL_HUP = EPOLLHUP;
static const int CEL_CTL_ADD = EPOLL_CTL_ADD;
static const int CEL_CTL_MOD = EPOLL_CTL_MOD;
static const int CEL_CTL_DEL = EPOLL_CTL_DEL;

/// epoll_create1 with close-on-exec; -1 and errno on failure.
static inline int cel_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

/// epoll_ctl with `op` one of CEL_CTL_ADD/MOD/DEL; returns 0 or -1 with errno.
static inline int cel_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event event;
    event.events = events;
    event.data.u64 = token;
    return epoll_ctl(epfd, op, fd, &event);
}

/// epoll_wait into `out` (at most `max`, which must be <= 512); the count, or -1 with errno
/// (EINTR included: the caller retries).
static inline int cel_epoll_wait(int epfd, cel_event *out, int max, int timeout_ms) {
    struct epoll_event events[512];
    if (max > 512) max = 512;
    int n = epoll_wait(epfd, events, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        out[i].events = events[i].events;
        out[i].token = events[i].data.u64;
    }
    return n;
}

/// A non-blocking, close-on-exec eventfd used to wake a sleeping loop.
static inline int cel_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

/// Names the calling thread (first 15 bytes) so it is recognisable in top, perf and gdb.
static inline void cel_set_thread_name(const char *name) { prctl(PR_SET_NAME, name, 0, 0, 0); }

/// A non-blocking, close-on-exec inotify descriptor; -1 with errno where inotify is unavailable
/// (some container runtimes, network file systems report no remote changes).
static inline int cel_inotify_open(void) { return inotify_init1(IN_NONBLOCK | IN_CLOEXEC); }

/// Watches a directory for entries created, moved in or out, deleted, or written and closed
/// (what an atomic write-then-rename and a version directory's arrival look like); the watch
/// descriptor, or -1 with errno.
static inline int cel_inotify_watch_directory(int fd, const char *path) {
    return inotify_add_watch(fd, path, IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE | IN_ONLYDIR);
}

/// Waits until `fd` is readable or `timeout_ms` passes: 1 readable, 0 timeout, -1 error (EINTR
/// included).
static inline int cel_wait_readable(int fd, int timeout_ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    int n = poll(&p, 1, timeout_ms);
    return n > 0 ? 1 : n;
}

/// Reads and discards everything pending on a non-blocking descriptor.
static inline void cel_drain(int fd) {
    char buffer[4096];
    while (read(fd, buffer, sizeof buffer) > 0) {}
}

#endif
#endif
