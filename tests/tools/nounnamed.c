/*
 * nounnamed — a test-only LD_PRELOAD shim for the Maildir backend's other
 * ways (relay/deliver_maildir.c). With IL_NOUNNAMED=open, openat() with
 * O_TMPFILE fails with EOPNOTSUPP, as on a filesystem without unnamed
 * files; with IL_NOUNNAMED=link, linkat() with AT_EMPTY_PATH fails with
 * ENOENT, as on a kernel before 6.10 for a process without
 * CAP_DAC_READ_SEARCH. Each refusal appends a line to $IL_NOUNNAMED_LOG, so
 * a test knows the other way was taken. With IL_NOUNNAMED=watch nothing is
 * refused, and each unnamed file opened and each one linked by its
 * descriptor (either way) is logged instead. Everything else goes to libc.
 */
/* Both openat and openat64 are defined here: not one renamed to the other. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static int mode_is(const char *what)
{
	const char *mode = getenv("IL_NOUNNAMED");
	return mode && strcmp(mode, what) == 0;
}

static void note(const char *line)
{
	const char *log = getenv("IL_NOUNNAMED_LOG");
	FILE *f = log ? fopen(log, "a") : NULL;
	if (f) {
		fprintf(f, "%s\n", line);
		fclose(f);
	}
}

static int refusing(const char *what)
{
	if (!mode_is(what))
		return 0;
	note(strcmp(what, "open") == 0 ? "refused open" : "refused link");
	return 1;
}

static int open_at(const char *name, int dirfd, const char *path, int flags, va_list ap)
{
	mode_t mode = 0;
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
		mode = va_arg(ap, mode_t);
	if ((flags & O_TMPFILE) == O_TMPFILE && refusing("open")) {
		errno = EOPNOTSUPP;
		return -1;
	}
	int (*real)(int, const char *, int, ...) =
		(int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, name);
	int fd = real(dirfd, path, flags, mode);
	if (fd >= 0 && (flags & O_TMPFILE) == O_TMPFILE && mode_is("watch"))
		note("unnamed open");
	return fd;
}

int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	int r = open_at("openat", dirfd, path, flags, ap);
	va_end(ap);
	return r;
}

int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	int r = open_at("openat64", dirfd, path, flags, ap);
	va_end(ap);
	return r;
}

int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)
{
	static int (*real)(int, const char *, int, const char *, int);
	if (!real)
		real = (int (*)(int, const char *, int, const char *, int))dlsym(RTLD_NEXT, "linkat");
	if ((flags & AT_EMPTY_PATH) && refusing("link")) {
		errno = ENOENT;
		return -1;
	}
	int r = real(olddirfd, oldpath, newdirfd, newpath, flags);
	/* By descriptor: AT_EMPTY_PATH, or its /proc link (kernels before 6.10
	 * without CAP_DAC_READ_SEARCH). */
	if (r == 0 && mode_is("watch") &&
	    ((flags & AT_EMPTY_PATH) || strncmp(oldpath, "/proc/self/fd/", 14) == 0))
		note("linked");
	return r;
}
