/* util.c — clocks, whole-file reads, folders, randomness. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "il/error.h"
#include "il/util.h"

int64_t util_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int util_read_fd(int fd, size_t max, uint8_t **out, size_t *out_len)
{
	size_t cap = 8192, len = 0;
	uint8_t *buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len == cap) {
			if (cap > max) {
				free(buf);
				*out_len = len;         /* how much was read (more than max) */
				return IL_ETOOLARGE;
			}
			size_t ncap = cap * 2;
			uint8_t *nb = realloc(buf, ncap + 1);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* A unix-socket peer that answered and closed without reading
			 * all we sent resets the connection after its answer: keep it. */
			if (errno == ECONNRESET && len > 0)
				break;
			int e = -errno;
			free(buf);
			return e;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > max) {
		free(buf);
		*out_len = len;
		return IL_ETOOLARGE;
	}
	buf[len] = 0;
	*out = buf;
	*out_len = len;
	return 0;
}

int util_read_file(const char *path, size_t max, uint8_t **out, size_t *out_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = util_read_fd(fd, max, out, out_len);
	close(fd);
	return r;
}

int util_mkdirs(const char *path, unsigned mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

void util_time_str(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (ms < 0 || !gmtime_r(&t, &tm)) {
		snprintf(out, 32, "1970-01-01T00:00:00.000Z");
		return;
	}
	/* Room for any int the compiler imagines in tm; real dates take 24. */
	char buf[96];
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	snprintf(out, 32, "%.31s", buf);
}

int util_time_parse(const char *s, size_t n, int64_t *ms)
{
	/* Digits where the form has them, these separators elsewhere. */
	static const char form[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	int v[7] = { 0 };
	static const uint8_t field_of[24] = { 0, 0, 0, 0, 9, 1, 1, 9, 2, 2, 9, 3, 3,
					      9, 4, 4, 9, 5, 5, 9, 6, 6, 6, 9 };
	if (n != sizeof(form) - 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (form[i] != 'd') {
			if (s[i] != form[i])
				return -1;
			continue;
		}
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v[field_of[i]] = v[field_of[i]] * 10 + (s[i] - '0');
	}
	struct tm tm = { .tm_year = v[0] - 1900, .tm_mon = v[1] - 1, .tm_mday = v[2],
			 .tm_hour = v[3], .tm_min = v[4], .tm_sec = v[5] };
	time_t t = timegm(&tm);
	/* timegm normalises 02-30 into March: a date that moved was not real. */
	if (t == (time_t)-1 || tm.tm_year != v[0] - 1900 || tm.tm_mon != v[1] - 1 ||
	    tm.tm_mday != v[2] || tm.tm_hour != v[3] || tm.tm_min != v[4] || tm.tm_sec != v[5])
		return -1;
	*ms = (int64_t)t * 1000 + v[6];
	return 0;
}

int util_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

int util_random(void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t r = getrandom(p, len, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

int util_claim_unix_path(const char *path, const char *what, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s %s: path too long for a unix socket", what, path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s %s: exists and is not a socket", what, path);
		return -EEXIST;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	if (live) {
		snprintf(err, errlen, "%s %s: another process is listening on it", what, path);
		return -EADDRINUSE;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		int e = -errno;
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return e;
	}
	return 0;
}
