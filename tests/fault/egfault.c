/* egfault: an LD_PRELOAD shim that makes one kind of call fail, or kills
 * the process inside it, at a chosen point, for the fault tests
 * (tests/unit/test_daemon_inject.c). Set in the environment:
 *
 *   EGFAULT_OP      alloc | write | fsync | rename
 *                     alloc:  malloc, calloc, realloc, aligned_alloc,
 *                             posix_memalign, memalign
 *                     write:  write, pwrite, pwrite64, fwrite
 *                     fsync:  fsync, fdatasync
 *                     rename: rename
 *   EGFAULT_MATCH   for alloc, a prefix of the calling thread's name; for
 *                   the others, a substring of the file's path (for
 *                   rename, of either path); empty or unset: every call
 *   EGFAULT_CALLER  alloc only: a substring of the file name of the
 *                   object that made the call (the executable, or a
 *                   library: "evogradd", "libdnnl"); unset: any
 *   EGFAULT_MIN     alloc only: calls for fewer bytes do not count (0)
 *   EGFAULT_NTH     the Nth matching call is the first to fault (1)
 *   EGFAULT_TIMES   how many matching calls fault from there (1; 0: all)
 *   EGFAULT_ACTION  fail (the call fails, errno set) | kill (SIGKILL to
 *                   the process before the call does anything) | trace
 *                   (the call goes through; only the line is written,
 *                   which is how a test finds the N it wants)
 *   EGFAULT_ERRNO   the errno of a failing call (ENOMEM for alloc, EIO
 *                   for the others)
 *
 * Each fault is announced with one line on stderr, "egfault: ...", before
 * it happens. With EGFAULT_OP unset the shim changes nothing. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* glibc's own allocator entry points: calling them needs no dlsym, which
 * itself allocates. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

enum { OP_NONE, OP_ALLOC, OP_WRITE, OP_FSYNC, OP_RENAME };

static struct {
    atomic_int ready; /* 0: not read yet, 1: being read, 2: read */
    int op, kill, trace, err;
    char match[256], caller[256], thread[17];
    size_t min;
    long nth, times;
    atomic_long seen;
} cfg;

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : dflt;
}

extern char **environ;

static void configure(void)
{
    int expect = 0;
    if (atomic_load(&cfg.ready) == 2 || !environ) return; /* no environment yet: no faults */
    if (!atomic_compare_exchange_strong(&cfg.ready, &expect, 1)) {
        while (atomic_load(&cfg.ready) != 2) {}
        return;
    }
    const char *op = getenv("EGFAULT_OP");
    static const char *const names[] = {"", "alloc", "write", "fsync", "rename"};
    cfg.op = OP_NONE;
    for (int i = 1; op && i < 5; i++)
        if (strcmp(op, names[i]) == 0) cfg.op = i;
    const char *m = getenv("EGFAULT_MATCH");
    snprintf(cfg.match, sizeof cfg.match, "%s", m ? m : "");
    const char *c = getenv("EGFAULT_CALLER");
    snprintf(cfg.caller, sizeof cfg.caller, "%s", c ? c : "");
    const char *a = getenv("EGFAULT_ACTION");
    cfg.kill = a && strcmp(a, "kill") == 0;
    cfg.trace = a && strcmp(a, "trace") == 0;
    cfg.err = (int)env_long("EGFAULT_ERRNO", cfg.op == OP_ALLOC ? ENOMEM : EIO);
    cfg.min = (size_t)env_long("EGFAULT_MIN", 0);
    cfg.nth = env_long("EGFAULT_NTH", 1);
    cfg.times = env_long("EGFAULT_TIMES", 1);
    atomic_store(&cfg.ready, 2);
}

/* One line on stderr, written with the system call itself (no stdio, no
 * allocation, no write of ours). */
static void announce(const char *fmt, ...)
{
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    syscall(SYS_write, 2, line, (size_t)n);
}

/* Counts a matching call; nonzero when this one must fault. A kill
 * happens here. */
static int fault_now(const char *what, const char *detail)
{
    long k = atomic_fetch_add(&cfg.seen, 1) + 1;
    if (k < cfg.nth || (cfg.times > 0 && k >= cfg.nth + cfg.times)) return 0;
    if (cfg.trace) {
        announce("egfault: %s #%ld (%s)", what, k, detail);
        return 0;
    }
    announce("egfault: %s %s #%ld (%s): %s", cfg.kill ? "killing the process at" : "failing",
             what, k, detail, cfg.kill ? "SIGKILL" : strerror(cfg.err));
    if (cfg.kill) {
        kill(getpid(), SIGKILL);
        for (;;) pause();
    }
    return 1;
}

/* ---- allocations ---- */

/* Whether an allocation of `bytes` made from code at `ra` must fail. */
static __attribute__((noinline)) int alloc_faults(size_t bytes, const void *ra)
{
    configure();
    if (cfg.op != OP_ALLOC || bytes < cfg.min) return 0;
    char name[17] = "";
    prctl(PR_GET_NAME, name, 0, 0, 0);
    if (strncmp(name, cfg.match, strlen(cfg.match)) != 0) return 0;
    Dl_info info = {0};
    const char *object = dladdr(ra, &info) && info.dli_fname ? info.dli_fname : "?";
    if (cfg.caller[0] && !strstr(object, cfg.caller)) return 0;
    const char *base = strrchr(object, '/');
    char detail[128];
    snprintf(detail, sizeof detail, "%zu bytes on thread %s from %s", bytes, name,
             base ? base + 1 : object);
    if (!fault_now("allocation", detail)) return 0;
    errno = cfg.err;
    return 1;
}

#define CALLER __builtin_return_address(0)

void *malloc(size_t n) { return alloc_faults(n, CALLER) ? NULL : __libc_malloc(n); }

void *calloc(size_t n, size_t size)
{
    return alloc_faults(n * size, CALLER) ? NULL : __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    return alloc_faults(n, CALLER) ? NULL : __libc_realloc(p, n);
}

void *memalign(size_t align, size_t n)
{
    return alloc_faults(n, CALLER) ? NULL : __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    return alloc_faults(n, CALLER) ? NULL : __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    if (align < sizeof(void *) || (align & (align - 1)) != 0) return EINVAL;
    if (alloc_faults(n, CALLER)) return cfg.err;
    void *p = __libc_memalign(align, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

/* ---- files ---- */

static int fd_matches(int fd, char *path, size_t cap)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, cap - 1);
    if (n < 0) return 0;
    path[n] = '\0';
    return strstr(path, cfg.match) != NULL;
}

static int file_faults(int op, int fd, const char *what)
{
    configure();
    if (cfg.op != op) return 0;
    char path[512];
    if (!fd_matches(fd, path, sizeof path)) return 0;
    if (!fault_now(what, path)) return 0;
    errno = cfg.err;
    return 1;
}

#define REAL(ret, name, ...)                                                                   \
    static ret (*real)(__VA_ARGS__);                                                           \
    if (!real) real = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, name)

ssize_t write(int fd, const void *p, size_t n)
{
    REAL(ssize_t, "write", int, const void *, size_t);
    return file_faults(OP_WRITE, fd, "write") ? -1 : real(fd, p, n);
}

ssize_t pwrite(int fd, const void *p, size_t n, off_t at)
{
    REAL(ssize_t, "pwrite", int, const void *, size_t, off_t);
    return file_faults(OP_WRITE, fd, "pwrite") ? -1 : real(fd, p, n, at);
}

ssize_t pwrite64(int fd, const void *p, size_t n, off_t at)
{
    REAL(ssize_t, "pwrite64", int, const void *, size_t, off_t);
    return file_faults(OP_WRITE, fd, "pwrite") ? -1 : real(fd, p, n, at);
}

size_t fwrite(const void *p, size_t size, size_t n, FILE *f)
{
    REAL(size_t, "fwrite", const void *, size_t, size_t, FILE *);
    return file_faults(OP_WRITE, fileno(f), "fwrite") ? 0 : real(p, size, n, f);
}

int fsync(int fd)
{
    REAL(int, "fsync", int);
    return file_faults(OP_FSYNC, fd, "fsync") ? -1 : real(fd);
}

int fdatasync(int fd)
{
    REAL(int, "fdatasync", int);
    return file_faults(OP_FSYNC, fd, "fdatasync") ? -1 : real(fd);
}

int rename(const char *from, const char *to)
{
    REAL(int, "rename", const char *, const char *);
    configure();
    if (cfg.op == OP_RENAME && (strstr(from, cfg.match) || strstr(to, cfg.match)) &&
        fault_now("rename", from)) {
        errno = cfg.err;
        return -1;
    }
    return real(from, to);
}
