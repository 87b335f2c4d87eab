/*
 * failsync — a test-only LD_PRELOAD shim: while the file named by
 * $IL_FAILSYNC_FLAG exists, fsync() and fdatasync() of a file whose name
 * ends in "-wal" fail with EIO, as a disk that cannot write would make them.
 * Everything else goes to libc. test_syncfail runs a real interlistd with it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failing(int fd)
{
	const char *flag = getenv("IL_FAILSYNC_FLAG");
	if (!flag || access(flag, F_OK) != 0)
		return 0;
	char link[64], path[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	if (n < 4)
		return 0;
	path[n] = 0;
	return strcmp(path + n - 4, "-wal") == 0;
}

/* Fail with EIO while failing(fd), else call libc's name (looked up once). */
static int pass_or_fail(int fd, int (**real)(int), const char *name)
{
	if (!*real)
		*real = (int (*)(int))dlsym(RTLD_NEXT, name);
	if (failing(fd)) {
		errno = EIO;
		return -1;
	}
	return (*real)(fd);
}

int fdatasync(int fd)
{
	static int (*real)(int);
	return pass_or_fail(fd, &real, "fdatasync");
}

int fsync(int fd)
{
	static int (*real)(int);
	return pass_or_fail(fd, &real, "fsync");
}
