/*
 * status.c — the status socket (unix stream): one command line per
 * connection, one answer, then close. `status` answers JSON; `submit LIST
 * LEN` followed by LEN message bytes hands a local post over. The socket is
 * mode 0660; commands that change state also check the caller's uid
 * (SO_PEERCRED) against root and our own user.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "il/error.h"
#include "il/log.h"
#include "il/util.h"
#include "il_build.h"
#include "relay.h"
#include "status.h"

#define STATUS_MAX_CONNS 64
#define STATUS_LINE_MAX 1024
#define STATUS_IDLE_MS 30000

/* Freed once the listener is closed and its last connection too: at stop,
 * a `submit` still waiting for its commit is answered after the listener
 * has gone, through a connection that still points here. */
struct status_srv {
	struct relay *r;
	uv_pipe_t server;
	int conns;
	int server_closed;
	int accept_stalled;             /* a connection waits: no memory to take it */
	struct conn *head;              /* every open connection */
	char path[108];
};

struct conn {
	uv_pipe_t pipe;
	struct status_srv *srv;
	struct conn *prev, *next;
	uv_timer_t idle;
	uint8_t *buf;
	size_t len, cap, need;          /* need: total bytes expected (line + body) */
	int closing, answered;
};

void jb_printf(struct wbuf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		wbuf_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

void jb_str(struct wbuf *b, const char *s)
{
	wbuf_u8(b, '"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			jb_printf(b, "\\%c", c);
		else if (c < 0x20)
			jb_printf(b, "\\u%04x", c);
		else
			wbuf_u8(b, c);
	}
	wbuf_u8(b, '"');
}

char *status_json(struct relay *r)
{
	struct wbuf b = { 0 };
	const struct counters *c = &r->c;
	jb_printf(&b, "{\"id\":");
	jb_str(&b, r->cfg->id);
	jb_printf(&b, ",\"version\":\"%s\",\"uptime_s\":%lld,\"peers\":[", IL_VERSION,
		  (long long)((util_now_ms() - r->started_ms) / 1000));
	for (size_t i = 0; i < r->n_peers; i++) {
		struct peer_stats s;
		uint64_t queued = 0;
		int64_t oldest = 0;
		peer_get_stats(r->peers[i], &s);
		store_queue_stats(r->store, peer_id(r->peers[i]), &queued, &oldest);
		jb_printf(&b, "%s{\"id\":", i ? "," : "");
		jb_str(&b, peer_id(r->peers[i]));
		jb_printf(&b, ",\"connected\":%s,\"connects\":%llu,\"queued\":%llu,\"sent\":%llu,"
			      "\"received\":%llu,\"rejected\":%llu,\"last_seen\":",
			  s.connected ? "true" : "false", (unsigned long long)s.connects,
			  (unsigned long long)queued, (unsigned long long)s.sent,
			  (unsigned long long)s.received, (unsigned long long)s.rejected);
		if (s.last_seen_ms)
			jb_printf(&b, "%lld}", (long long)(s.last_seen_ms / 1000));
		else
			jb_printf(&b, "null}");
	}
	jb_printf(&b, "],\"lists\":[");
	for (size_t i = 0; i < r->n_lists; i++) {
		struct list_rt *l = r->lists[i];
		uint64_t pending = 0, failed = 0;
		store_deliver_stats(r->store, l->conf->name, &pending, &failed);
		jb_printf(&b, "%s{\"name\":", i ? "," : "");
		jb_str(&b, l->conf->name);
		jb_printf(&b, ",\"ingested\":%llu,\"delivered\":%llu,\"pending\":%llu,\"failed\":%llu}",
			  (unsigned long long)l->ingested, (unsigned long long)l->delivered,
			  (unsigned long long)pending, (unsigned long long)failed);
	}
#define CNT(name) jb_printf(&b, ",\"" #name "\":%llu", (unsigned long long)c->name)
	jb_printf(&b, "],\"counters\":{\"accepted\":%llu", (unsigned long long)c->accepted);
	CNT(duplicates); CNT(bad_signature); CNT(unknown_origin); CNT(auth_failed); CNT(loops);
	CNT(too_large); CNT(stale); CNT(held_tlp); CNT(malformed); CNT(unknown_list);
	CNT(hop_limit); CNT(expired); CNT(not_accepted); CNT(purged); CNT(replays);
#undef CNT
	jb_printf(&b, "}}\n");
	wbuf_u8(&b, 0);
	if (b.err) {
		wbuf_free(&b);
		return NULL;
	}
	return (char *)b.p;
}

static void srv_maybe_free(struct status_srv *srv)
{
	if (srv->server_closed && srv->conns == 0)
		free(srv);
}

static void conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	if (--c->closing == 0) {
		struct status_srv *srv = c->srv;
		if (c->prev)
			c->prev->next = c->next;
		else
			srv->head = c->next;
		if (c->next)
			c->next->prev = c->prev;
		srv->conns--;
		free(c->buf);
		free(c);
		srv_maybe_free(srv);
	}
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = 2;
	uv_read_stop((uv_stream_t *)&c->pipe);
	uv_timer_stop(&c->idle);
	uv_close((uv_handle_t *)&c->pipe, conn_closed);
	uv_close((uv_handle_t *)&c->idle, conn_closed);
}

struct wreq {
	uv_write_t w;
	struct conn *c;
	char *data;
};

static void wrote(uv_write_t *w, int status)
{
	(void)status;
	struct wreq *wr = (struct wreq *)w;
	conn_close(wr->c);
	free(wr->data);
	free(wr);
}

/* Answer (taking ownership of data) and close once written. */
void status_answer(struct conn *c, char *data, size_t len)
{
	struct wreq *wr = calloc(1, sizeof(*wr));
	log_flush();    /* what the command logged is in the log before its answer */
	c->answered = 1;
	uv_read_stop((uv_stream_t *)&c->pipe);
	if (!wr) {
		free(data);
		conn_close(c);
		return;
	}
	wr->c = c;
	wr->data = data;
	uv_buf_t b = uv_buf_init(data, (unsigned)len);
	if (uv_write(&wr->w, (uv_stream_t *)&c->pipe, &b, 1, wrote) < 0) {
		free(data);
		free(wr);
		conn_close(c);
	}
}

void status_answerf(struct conn *c, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		conn_close(c);
		return;
	}
	status_answer(c, s, (size_t)n);
}

/* The caller's uid, from the kernel (not from anything the client says). */
int status_peer_uid(struct conn *c, uid_t *uid)
{
	uv_os_fd_t fd;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return -errno;
	*uid = cr.uid;
	return 0;
}

int status_caller_privileged(struct conn *c)
{
	uid_t uid = (uid_t)-1;
	return status_peer_uid(c, &uid) == 0 && (uid == 0 || uid == geteuid());
}

static void submitted(void *arg, int err, const uint8_t *id, enum local_kind kind,
		      const char *message_id)
{
	(void)message_id;
	struct conn *c = arg;
	char hex[IL_ID_HEX_LEN + 1];
	if (err < 0) {
		status_answerf(c, "err 75 %s\n", il_strerror(err));
		return;
	}
	envelope_id_hex(id, hex);
	status_answerf(c, "ok %s %s\n", hex,
		       kind == LOCAL_NEW ? "new" : kind == LOCAL_LOOP ? "loop" : "repeat");
}

static void do_submit(struct conn *c, const char *list, const uint8_t *msg, size_t len)
{
	struct relay *r = c->srv->r;
	/* Stop reading: the answer waits for the group commit, and the client's
	 * end-of-input must not close the connection meanwhile. */
	uv_read_stop((uv_stream_t *)&c->pipe);
	c->answered = 1;
	int e = relay_submit_async(r, list, msg, len, submitted, c);
	if (e == 0)
		return;
	int code = 75;
	const char *why = il_strerror(e);
	switch (e) {
	case IL_ENOTMAIL: case IL_ENOMSGID: case IL_ETOOLARGE:
		code = 65;
		break;
	case IL_EFIELD:
		code = 65;
		why = "unknown list";
		break;
	}
	log_info("ingest", "submit_refused", "list=%s err=%s", log_q(list), log_q(why));
	status_answerf(c, "err %d %s\n", code, why);
}

/* A whole request is in c->buf: the command line, and the body for submit. */
static void dispatch(struct conn *c, char *line, const uint8_t *body, size_t body_len)
{
	struct relay *r = c->srv->r;
	char *save = NULL;
	char *cmd = strtok_r(line, " ", &save);
	if (!cmd) {
		status_answerf(c, "err 64 empty command\n");
		return;
	}
	if (!strcmp(cmd, "status")) {
		char *j = status_json(r);
		if (j)
			status_answer(c, j, strlen(j));
		else
			conn_close(c);
		return;
	}
	if (!strcmp(cmd, "reload")) {
		char err[1024];
		if (!status_caller_privileged(c)) {
			status_answerf(c, "err 77 permission denied: reload needs root or the relay's user\n");
			return;
		}
		if (relay_reload(r, err, sizeof(err)) < 0)
			status_answerf(c, "err 78 %s\n", err);
		else
			status_answerf(c, "ok reloaded\n");
		return;
	}
	if (!strcmp(cmd, "submit")) {
		char *list = strtok_r(NULL, " ", &save);
		do_submit(c, list ? list : "", body, body_len);
		return;
	}
	if (status_extra_command(c, r, cmd, save))
		return;
	status_answerf(c, "err 64 unknown command: %s\n", cmd);
}

/* "submit LIST SIZE" refused for its size (parse_need checked the form). */
static void log_too_large(const struct conn *c, size_t line_len)
{
	const char *line = (const char *)c->buf;
	const char *sp = memrchr(line, ' ', line_len);
	char list[IL_LIST_MAX + 1] = "";
	if (sp > line + 7)
		snprintf(list, sizeof(list), "%.*s", (int)(sp - line - 7), line + 7);
	log_info("ingest", "submit_refused", "list=%s err=%s bytes=%llu", log_q(list),
		 log_q("message too large"), strtoull(sp + 1, NULL, 10));
}

/* Once the line is complete, work out how many body bytes follow. */
static int parse_need(struct conn *c, size_t line_len)
{
	struct relay *r = c->srv->r;
	if (strncmp((char *)c->buf, "submit ", 7) != 0)
		return 0;
	const char *sp = memrchr(c->buf, ' ', line_len);
	char *end;
	unsigned long long n = strtoull(sp + 1, &end, 10);
	if ((uint8_t *)end != c->buf + line_len)
		return -EINVAL;
	/* A little over the limit so the relay, not the socket, says too large. */
	if (n > r->cfg->max_message_bytes + 1)
		return IL_ETOOLARGE;
	c->need = line_len + 1 + n;
	return 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)hint;
	struct conn *c = h->data;
	size_t want = c->need ? c->need - c->len : STATUS_LINE_MAX;
	if (want < 4096)
		want = 4096;
	if (c->cap - c->len < want) {
		uint8_t *nb = realloc(c->buf, c->len + want + 1);
		if (!nb) {
			*buf = uv_buf_init(NULL, 0);
			return;
		}
		c->buf = nb;
		c->cap = c->len + want;
	}
	*buf = uv_buf_init((char *)c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	(void)buf;
	struct conn *c = s->data;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)nread;
	uv_timer_again(&c->idle);
	uint8_t *nl = memchr(c->buf, '\n', c->len);
	if (!nl) {
		if (c->len > STATUS_LINE_MAX)
			status_answerf(c, "err 64 command line too long\n");
		return;
	}
	size_t line_len = (size_t)(nl - c->buf);
	if (!c->need) {
		int e = parse_need(c, line_len);
		if (e == IL_ETOOLARGE) {
			/* interlistctl sends only the size of a post it knows is
			 * too large, so that it is counted and logged here. */
			c->srv->r->c.too_large++;
			log_too_large(c, line_len);
			status_answerf(c, "err 65 message too large\n");
			return;
		}
		if (e < 0) {
			status_answerf(c, "err 64 bad command line\n");
			return;
		}
		if (!c->need)
			c->need = line_len + 1;
	}
	if (c->len < c->need)
		return;
	*nl = 0;
	if (line_len && c->buf[line_len - 1] == '\r')
		c->buf[line_len - 1] = 0;
	dispatch(c, (char *)c->buf, nl + 1, c->need - line_len - 1);
}

static void on_idle(uv_timer_t *t)
{
	struct conn *c = t->data;
	if (!c->answered)
		conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct status_srv *srv = server->data;
	if (status < 0)
		return;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		/* libuv holds the connection and stops accepting until it is
		 * taken: status_accept_retry, on the next tick. */
		srv->accept_stalled = 1;
		return;
	}
	c->srv = srv;
	uv_pipe_init(srv->r->loop, &c->pipe, 0);
	uv_timer_init(srv->r->loop, &c->idle);
	c->pipe.data = c;
	c->idle.data = c;
	srv->conns++;
	c->next = srv->head;
	if (srv->head)
		srv->head->prev = c;
	srv->head = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
		conn_close(c);
		return;
	}
	if (srv->conns > STATUS_MAX_CONNS) {
		status_answerf(c, "err 75 too many connections\n");
		return;
	}
	uv_timer_start(&c->idle, on_idle, STATUS_IDLE_MS, STATUS_IDLE_MS);
	uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

int status_start(struct relay *r, char *err, size_t errlen)
{
	const char *path = r->cfg->status_socket.s;
	struct status_srv *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	if (strlen(path) >= sizeof(srv->path)) {
		snprintf(err, errlen, "status socket path too long: %s", path);
		free(srv);
		return -ENAMETOOLONG;
	}
	snprintf(srv->path, sizeof(srv->path), "%s", path);
	srv->r = r;
	int e = util_claim_unix_path(path, "status socket", err, errlen);
	if (e == -EADDRINUSE)
		snprintf(err, errlen, "status socket %s: another interlistd is running", path);
	if (e < 0) {
		free(srv);
		return e;
	}
	uv_pipe_init(r->loop, &srv->server, 0);
	srv->server.data = srv;
	r->status = srv;
	/* Bind with a umask that leaves no window where others could connect. */
	mode_t old = umask(0117);
	e = uv_pipe_bind(&srv->server, path);
	umask(old);
	if (e < 0 || (e = uv_listen((uv_stream_t *)&srv->server, 64, on_connection)) < 0) {
		snprintf(err, errlen, "status socket %s: %s", path, uv_strerror(e));
		return e;
	}
	chmod(path, 0660);
	log_info("status", "listening", "path=%s", log_q(path));
	return 0;
}

static void server_closed(uv_handle_t *h)
{
	struct status_srv *srv = h->data;
	srv->server_closed = 1;
	srv_maybe_free(srv);
}

void status_accept_retry(struct relay *r)
{
	struct status_srv *srv = r->status;
	if (srv && srv->accept_stalled) {
		srv->accept_stalled = 0;
		on_connection((uv_stream_t *)&srv->server, 0);
	}
}

void status_stop(struct relay *r)
{
	struct status_srv *srv = r->status;
	if (!srv)
		return;
	unlink(srv->path);
	/* Connections still reading their command go now; those answering
	 * (a submit waits for its commit) close when their answer is out. */
	for (struct conn *c = srv->head, *next; c; c = next) {
		next = c->next;
		if (!c->answered)
			conn_close(c);
	}
	uv_close((uv_handle_t *)&srv->server, server_closed);
	r->status = NULL;
}
