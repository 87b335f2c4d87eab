/*
 * failalloc — a test-only LD_PRELOAD shim: when the file named by
 * $IL_FAILALLOC_FLAG exists, the next calloc() of at least $IL_FAILALLOC_MIN
 * bytes fails with ENOMEM and the file is removed (one failure per flag).
 * Everything else goes to glibc's own calloc. test_acceptoom runs a real
 * interlistd with it: an LMTP session (64 KiB of buffer) is the only
 * allocation that big when the relay is idle. Not for sanitizer builds,
 * whose runtime must own every allocation.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

extern void *__libc_calloc(size_t n, size_t size);

void *calloc(size_t n, size_t size)
{
	/* getenv and access allocate nothing: safe inside calloc. */
	const char *flag = getenv("IL_FAILALLOC_FLAG");
	const char *min = getenv("IL_FAILALLOC_MIN");
	int saved = errno;      /* a calloc that succeeds leaves errno alone */
	if (flag && min && size && n <= (size_t)-1 / size && n * size >= strtoul(min, NULL, 10) &&
	    access(flag, F_OK) == 0 && unlink(flag) == 0) {
		errno = ENOMEM;
		return NULL;
	}
	errno = saved;
	return __libc_calloc(n, size);
}
