/*
 * ctl_socket.c — interlistctl verbs that talk to a running interlistd over
 * its status socket: one request line (plus a message for submit), one
 * answer. Answers starting "err CODE " carry the exit status to use.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "il/config.h"
#include "il/envelope.h"
#include "il/error.h"
#include "il/util.h"
#include "ctl.h"

#define CTL_ANSWER_MAX (64u << 20)

/* The socket path: -s, else the config's status_socket (-c or the default).
 * On failure prints why and returns the exit status to use (> 0). */
static int socket_path(const struct ctl_opts *o, char *out, size_t outlen, size_t *max_msg,
		       int fail_code)
{
	*max_msg = 64u << 20;
	if (o->socket) {
		snprintf(out, outlen, "%s", o->socket);
		return 0;
	}
	struct il_config *cfg = NULL;
	char err[1024];
	const char *path = o->config ? o->config : IL_DEFAULT_CONFIG;
	if (config_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "interlistctl: %s\n", err);
		return fail_code;
	}
	snprintf(out, outlen, "%s", cfg->status_socket.s);
	*max_msg = cfg->max_message_bytes;
	config_free(cfg);
	return 0;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Send head (+ body), read the whole answer. Returns 0 or a negative code. */
static int exchange(const char *path, const char *head, const uint8_t *body, size_t body_len,
		    uint8_t **answer, size_t *answer_len)
{
	int fd = connect_to(path);
	if (fd < 0)
		return fd;
	int e = send_all(fd, head, strlen(head));
	if (e == 0 && body_len)
		e = send_all(fd, body, body_len);
	if (e == 0)
		shutdown(fd, SHUT_WR);
	/* The daemon may answer early (a message too large) and close: its
	 * answer is still there to read even though our send failed. */
	if (e == 0 || e == -EPIPE || e == -ECONNRESET) {
		int se = e;
		e = util_read_fd(fd, CTL_ANSWER_MAX, answer, answer_len);
		if (e == 0 && *answer_len == 0 && se < 0) {
			free(*answer);
			e = se;
		}
	}
	close(fd);
	if (e == 0 && *answer_len == 0) {
		free(*answer);
		e = -ECONNRESET;
	}
	return e;
}

/* "err CODE text": print text, return CODE. */
static int answer_error(const uint8_t *a)
{
	int code = atoi((const char *)a + 4);
	const char *text = strchr((const char *)a + 4, ' ');
	fprintf(stderr, "interlistctl: %s", text ? text + 1 : "error\n");
	return code > 0 && code < 256 ? code : EX_SOFTWARE_;
}

/* The rest of fd, read and dropped: how many bytes it held. */
static unsigned long long drain_count(int fd)
{
	char buf[65536];
	unsigned long long n = 0;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return n;
		n += (unsigned long long)r;
	}
}

/* A post over max_message_bytes: the daemon is told its size alone (it
 * refuses it, counts too_large and logs it), and the MTA bounces it (65)
 * whether or not the daemon could be told. */
static int submit_too_large(const char *path, const char *list, size_t max_msg,
			    unsigned long long size)
{
	char head[320];
	uint8_t *ans = NULL;
	size_t alen = 0;
	snprintf(head, sizeof(head), "submit %s %llu\n", list, size);
	if (exchange(path, head, NULL, 0, &ans, &alen) == 0)
		free(ans);
	fprintf(stderr, "interlistctl: message larger than max_message_bytes (%zu)\n", max_msg);
	return EX_DATAERR_;
}

int ctl_submit(const struct ctl_opts *o, int argc, char **argv)
{
	char path[256], head[IL_LIST_MAX + 64];
	size_t max_msg;
	uint8_t *msg = NULL, *ans = NULL;
	size_t len = 0, alen = 0;
	if (argc != 2) {
		fprintf(stderr, "usage: interlistctl [-s SOCK | -c FILE] submit LIST < message\n");
		return EX_USAGE_;
	}
	/* MTAs retry 75 and bounce most else: anything not about the message is 75. */
	int rc = socket_path(o, path, sizeof(path), &max_msg, EX_TEMPFAIL_);
	if (rc)
		return rc;
	if (strlen(argv[1]) > IL_LIST_MAX || strchr(argv[1], ' ')) {
		fprintf(stderr, "interlistctl: bad list name: %.64s\n", argv[1]);
		return EX_DATAERR_;     /* as an unknown list: the MTA bounces */
	}
	int e = util_read_fd(0, max_msg, &msg, &len);
	if (e == IL_ETOOLARGE) {
		unsigned long long size = (unsigned long long)len + drain_count(0);
		return submit_too_large(path, argv[1], max_msg, size);
	}
	if (e < 0) {
		fprintf(stderr, "interlistctl: reading the message: %s\n", il_strerror(e));
		return EX_TEMPFAIL_;
	}
	snprintf(head, sizeof(head), "submit %s %zu\n", argv[1], len);
	e = exchange(path, head, msg, len, &ans, &alen);
	free(msg);
	if (e < 0) {
		fprintf(stderr, "interlistctl: %s: %s\n", path, il_strerror(e));
		return EX_TEMPFAIL_;
	}
	if (!strncmp((char *)ans, "ok ", 3) && alen >= 3 + IL_ID_HEX_LEN) {
		printf("%.*s\n", IL_ID_HEX_LEN, (char *)ans + 3);
		rc = 0;
	} else if (!strncmp((char *)ans, "err ", 4)) {
		rc = answer_error(ans);
	} else {
		fprintf(stderr, "interlistctl: unexpected answer from the daemon\n");
		rc = EX_TEMPFAIL_;
	}
	free(ans);
	return rc;
}

int ctl_command(const struct ctl_opts *o, int argc, char **argv)
{
	char path[256], head[1024];
	size_t max_msg, off = 0;
	uint8_t *ans = NULL;
	size_t alen = 0;
	int rc = socket_path(o, path, sizeof(path), &max_msg, EX_CONFIG_);
	if (rc)
		return rc;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--human"))
			continue;
		int n = snprintf(head + off, sizeof(head) - off, "%s%s", i ? " " : "", argv[i]);
		if (n < 0 || (size_t)n >= sizeof(head) - off) {
			fprintf(stderr, "interlistctl: command too long\n");
			return EX_USAGE_;
		}
		off += (size_t)n;
	}
	snprintf(head + off, sizeof(head) - off, "\n");
	int e = exchange(path, head, NULL, 0, &ans, &alen);
	if (e < 0) {
		fprintf(stderr, "interlistctl: cannot reach interlistd at %s: %s\n", path,
			il_strerror(e));
		return EX_UNAVAILABLE_;
	}
	if (!strncmp((char *)ans, "err ", 4)) {
		rc = answer_error(ans);
	} else {
		fwrite(ans, 1, alen, stdout);
		rc = 0;
	}
	free(ans);
	return rc;
}
