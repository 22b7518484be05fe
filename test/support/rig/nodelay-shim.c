/*
 * LD_PRELOAD shim for the test pcscd (see test/support/rig/pcscd.ts).
 *
 * 1. TCP_NODELAY on every accepted socket. Debian's vpcd writes each frame in
 *    two send() calls (length, then payload) on a socket without TCP_NODELAY:
 *    Nagle + the peer's delayed ACK make every APDU cost ~45 ms. Setting
 *    TCP_NODELAY on the sockets pcscd accepts brings that to well under 1 ms.
 * 2. Die with the test process: when RC_SHIM_PARENT_PID is set, the daemon
 *    asks the kernel for SIGTERM when its parent (the test process) exits, so
 *    a test runner killed with SIGKILL leaves no pcscd behind.
 * RC_SHIM_NODELAY=0 turns (1) off (to measure the difference).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int nodelay_on(void) {
    const char *v = getenv("RC_SHIM_NODELAY");
    return !(v && v[0] == '0');
}

static void set_nodelay(int fd) {
    if (fd < 0 || !nodelay_on()) return;
    int one = 1;
    /* fails harmlessly (ENOTSUP/EOPNOTSUPP) on Unix sockets: pcscd.comm */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    int c = real(fd, addr, len);
    set_nodelay(c);
    return c;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    int c = real(fd, addr, len, flags);
    set_nodelay(c);
    return c;
}

__attribute__((constructor)) static void rc_shim_init(void) {
    const char *p = getenv("RC_SHIM_PARENT_PID");
    if (!p || !*p) return;
    pid_t want = (pid_t)atol(p);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    /* the parent may already be gone before prctl took effect */
    if (getppid() != want) _exit(0);
}
