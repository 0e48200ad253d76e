#ifndef CHATLEDGER_SYSTEM_H
#define CHATLEDGER_SYSTEM_H

#include <stdint.h>
#include <sys/epoll.h>

/* epoll for Swift: `struct epoll_event` is packed on x86-64 and holds a union, so it
   stays on this side; Swift sees file descriptors and flag words only. */

enum {
    CL_EPOLLIN = EPOLLIN,
    CL_EPOLLOUT = EPOLLOUT,
    CL_EPOLLERR = EPOLLERR,
    CL_EPOLLHUP = EPOLLHUP,
    CL_EPOLLRDHUP = EPOLLRDHUP,
};

int cl_epoll_create(void);
/* Adds (modify 0) or changes (modify 1) the events watched on fd; 0 or -1 with errno. */
int cl_epoll_watch(int epoll, int fd, uint32_t events, int modify);
int cl_epoll_unwatch(int epoll, int fd);
/* Waits up to timeout ms; fills fds[i] and events[i]; returns the count or -1 with errno. */
int cl_epoll_wait(int epoll, int *fds, uint32_t *events, int capacity, int timeout);

/* accept4 and pipe2 need _GNU_SOURCE, which Swift's Glibc module does not set. */
/* Accepts a connection, non-blocking and close-on-exec; -1 with errno when none. */
int cl_accept(int listener);
/* A non-blocking, close-on-exec pipe; 0 or -1 with errno. */
int cl_pipe(int fds[2]);

#endif
