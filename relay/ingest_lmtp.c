/*
 * ingest_lmtp.c — `ingest = lmtp://HOST:PORT | lmtp:unix:PATH`: an LMTP
 * server (RFC 2033) per list, on the loop thread.
 *
 * The MTA delivers the list's copy for this relay here. Sessions feed their
 * bytes to the protocol machine (lmtp.c); each complete message goes to
 * relay_submit_async(), whose answer comes after the store's (group) commit,
 * so the 250 we then send means durable. Meanwhile the session reads
 * nothing more and keeps the input that followed the message (pipelining)
 * for afterwards, so replies stay in order. One outcome per message,
 * repeated for every recipient. A connection that drops before the final
 * dot stores nothing.
 *
 * Lifetime: struct ingest lives until its listener and every session handle
 * are closed; ingest_stop() detaches it from the list and starts closing, so
 * the list may be freed before the last close callback runs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
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
#include "il/mailhdr.h"
#include "lmtp.h"
#include "relay.h"

/* RFC 5321 4.5.3.2.7: a server should wait at least 5 minutes for a command. */
#define INGEST_IDLE_MS (300 * 1000)
/* Sessions per listener; an MTA opens a few per destination (Postfix's
 * default lmtp_destination_concurrency_limit is 20). */
#define INGEST_MAX_SESSIONS 64
#define INGEST_READ_BUF (64 * 1024)
/* Replies queued to a client that does not read: stop reading from it
 * until they drain, so pipelined NOOPs cannot grow our memory. */
#define INGEST_WQ_MAX (256 * 1024)
#define INGEST_BACKLOG 128

union ingest_handle {
	uv_handle_t h;
	uv_stream_t s;
	uv_tcp_t tcp;
	uv_pipe_t pipe;
};

struct ingest {
	struct relay *r;
	struct list_rt *l;              /* NULL once stopped */
	char list[IL_LIST_MAX + 1];
	enum il_ingest_kind kind;
	union ingest_handle server;
	char addr[300];                 /* for logs: host:port or the socket path */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t sock_dev;                 /* the socket file we made, to unlink only that */
	ino_t sock_ino;
	int server_open;
	int accept_stalled;             /* a connection waits: no memory to take it */
	int sessions;
	struct sess *head;
};

struct sess {
	union ingest_handle h;
	uv_timer_t idle;
	struct ingest *in;
	struct lmtp *p;                 /* NULL for a session refused as one too many */
	struct sess *prev, *next;
	int closing;                    /* handles still to close */
	int quitting;                   /* close once the output is written */
	int throttled;                  /* output queue full: not reading until it drains */
	int reading;
	int submitting;                 /* a message waits for the store's answer */
	int eof_seen;                   /* the client closed while we were storing */
	int sync;                       /* inside relay_submit_async: its answer waits */
	int answered, ans_err;          /* the answer that came back during sync */
	enum local_kind ans_kind;
	uint8_t ans_id[IL_SHA256_LEN];
	char *ans_msgid;
	size_t pend_off, pend_end;      /* input after the message, in buf, not yet fed */
	struct sess *ready_next;        /* on r->ingest_ready: answered, not yet written */
	char peer[80];
	char buf[INGEST_READ_BUF];
};

struct wreq {
	uv_write_t w;
	struct sess *s;
	uint8_t *data;
};

static void ingest_maybe_free(struct ingest *in)
{
	if (!in->l && !in->server_open && in->sessions == 0)
		free(in);
}

/* ---- sessions ---- */

/* Freed once both handles are closed and no store answer is outstanding
 * (relay_submit_async holds s as its callback argument). */
static void sess_maybe_free(struct sess *s)
{
	if (s->closing != 1 || s->submitting)
		return;
	struct ingest *in = s->in;
	if (s->prev)
		s->prev->next = s->next;
	else
		in->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	in->sessions--;
	lmtp_free(s->p);
	free(s->ans_msgid);
	free(s);
	ingest_maybe_free(in);
}

/* closing counts 3 → 1: two handles to close, then the final state. */
static void sess_closed(uv_handle_t *h)
{
	struct sess *s = h->data;
	s->closing--;
	sess_maybe_free(s);
}

static void sess_close(struct sess *s, const char *why)
{
	if (s->closing)
		return;
	if (s->p && lmtp_in_data(s->p))
		log_info("ingest", "lmtp_aborted", "list=%s peer=%s why=%s from=%s", s->in->list,
			 log_q(s->peer), why, log_q(lmtp_mail_from(s->p)));
	else
		log_debug("ingest", "lmtp_closed", "list=%s peer=%s why=%s", s->in->list,
			  log_q(s->peer), why);
	s->closing = 3;
	s->reading = 0;
	uv_read_stop(&s->h.s);
	uv_timer_stop(&s->idle);
	uv_close(&s->h.h, sess_closed);
	uv_close((uv_handle_t *)&s->idle, sess_closed);
}

/* While a message is being stored, input that arrives (a pipelining client's
 * next commands) is appended to the input parked after it, and fed once the
 * answer is given. Reading on rather than stopping spares the epoll_ctl
 * calls of a stop and a restart for every message. */
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)hint;
	struct sess *s = h->data;
	if (s->submitting)
		*buf = uv_buf_init(s->buf + s->pend_end, (unsigned)(sizeof(s->buf) - s->pend_end));
	else
		*buf = uv_buf_init(s->buf, sizeof(s->buf));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* Read only when the input can be taken: not while a message waits for the
 * store and the input parked after it fills buf, nor while the client
 * leaves our replies unread. */
static void update_reading(struct sess *s)
{
	int want = !s->closing && !s->quitting && !s->throttled && !s->eof_seen &&
		   !(s->submitting && s->pend_end == sizeof(s->buf));
	if (want == s->reading)
		return;
	s->reading = want;
	if (!want) {
		uv_read_stop(&s->h.s);
	} else if (uv_read_start(&s->h.s, on_alloc, on_read) < 0) {
		s->reading = 0;
		sess_close(s, "read_failed");
	}
}

static void wrote(uv_write_t *w, int status)
{
	struct wreq *wr = (struct wreq *)w;
	struct sess *s = wr->s;
	free(wr->data);
	free(wr);
	if (s->closing)
		return;
	if (status < 0) {
		sess_close(s, "write_failed");
		return;
	}
	size_t queued = uv_stream_get_write_queue_size(&s->h.s);
	if (s->quitting && queued == 0) {
		sess_close(s, "quit");
		return;
	}
	if (s->throttled && queued < INGEST_WQ_MAX / 2) {
		s->throttled = 0;
		update_reading(s);
	}
}

/* Write data (taking ownership). Returns 0, or closes the session. A reply
 * the socket takes at once goes out with uv_try_write: no request, no
 * completion callback, no epoll changes; only a remainder is queued. */
static int sess_write(struct sess *s, uint8_t *data, size_t len)
{
	size_t off = 0;
	/* An MTA's log and ours are matched: a message's line is written
	 * before its reply, not at the end of the loop iteration. */
	log_flush();
	if (uv_stream_get_write_queue_size(&s->h.s) == 0) {
		uv_buf_t b0 = uv_buf_init((char *)data, (unsigned)len);
		int w = uv_try_write(&s->h.s, &b0, 1);
		if (w >= 0)
			off = (size_t)w;
		else if (w != UV_EAGAIN) {
			free(data);
			sess_close(s, "write_failed");
			return w;
		}
		if (off == len) {
			free(data);
			if (s->quitting)
				sess_close(s, "quit");  /* no wrote() will come to do it */
			return 0;
		}
	}
	struct wreq *wr = calloc(1, sizeof(*wr));
	if (!wr) {
		free(data);
		sess_close(s, "no_memory");
		return -ENOMEM;
	}
	wr->s = s;
	wr->data = data;
	uv_buf_t b = uv_buf_init((char *)data + off, (unsigned)(len - off));
	int e = uv_write(&wr->w, &s->h.s, &b, 1, wrote);
	if (e < 0) {
		free(data);
		free(wr);
		sess_close(s, "write_failed");
		return e;
	}
	return 0;
}

/* Send what the protocol machine has to say, then read again if we may. */
static void flush(struct sess *s)
{
	size_t len;
	if (s->closing)
		return;
	uint8_t *out = lmtp_take_output(s->p, &len);
	if (out && sess_write(s, out, len) < 0)
		return;
	/* Written at once (or nothing to write): no wrote() callback will
	 * come to close a quitting session. */
	if (s->quitting && uv_stream_get_write_queue_size(&s->h.s) == 0) {
		sess_close(s, "quit");
		return;
	}
	if (uv_stream_get_write_queue_size(&s->h.s) > INGEST_WQ_MAX)
		s->throttled = 1;
	update_reading(s);
}

/* Log and answer the message that waited for the store. */
static void answer(struct sess *s, int err, const uint8_t *id, enum local_kind kind,
		   const char *message_id)
{
	struct ingest *in = s->in;
	const uint8_t *msg = NULL;
	size_t len = 0;
	char hex[IL_ID_HEX_LEN + 1], detail[IL_ID_HEX_LEN + 32];
	const char *from = lmtp_mail_from(s->p);
	lmtp_message(s->p, &msg, &len);
	if (err < 0) {
		log_warn("ingest", "lmtp_refused", "list=%s reason=tempfail bytes=%zu from=%s rcpts=%zu "
			 "err=%s", in->list, len, log_q(from), lmtp_rcpt_count(s->p),
			 log_q(il_strerror(err)));
		lmtp_finish(s->p, err, NULL);
		return;
	}
	envelope_id_hex(id, hex);
	/* The Message-ID too, so that the MTA's log and ours can be matched. */
	log_info("ingest", "lmtp_accepted", "list=%s msg=%s message_id=%s kind=%s bytes=%zu "
		 "from=%s rcpts=%zu", in->list, hex, log_q(message_id ? message_id : "-"),
		 kind == LOCAL_NEW ? "new" : kind == LOCAL_LOOP ? "loop" : "repeat", len,
		 log_q(from), lmtp_rcpt_count(s->p));
	/* A loop or a repeat is a success for the MTA: answering anything
	 * else would make it retry or bounce a message we already carry. */
	snprintf(detail, sizeof(detail), "as %s%s", hex,
		 kind == LOCAL_LOOP ? " (loop, not resent)" : kind == LOCAL_REPEAT ? " (repeat)" : "");
	lmtp_finish(s->p, 0, detail);
}

static void process(struct sess *s, size_t off, size_t end);

/* relay_submit_async's answer: after the group commit, or at once (during
 * the call) for a loop or a repeat. */
static void submitted(void *arg, int err, const uint8_t *id, enum local_kind kind,
		      const char *message_id)
{
	struct sess *s = arg;
	if (s->sync) {
		/* deliver() answers once relay_submit_async has returned: it is
		 * still reading the message we would free now. */
		s->answered = 1;
		s->ans_err = err;
		s->ans_kind = kind;
		if (id)
			memcpy(s->ans_id, id, sizeof(s->ans_id));
		free(s->ans_msgid);
		s->ans_msgid = message_id ? strdup(message_id) : NULL;
		return;
	}
	s->submitting = 0;
	answer(s, err, id, kind, message_id);
	if (s->closing) {
		sess_maybe_free(s);
		return;
	}
	/* Written once the whole group is answered (ingest_answers_flush, in
	 * this same callback): the group's log lines then take one write, not
	 * one per post, and still come before the first reply. */
	s->ready_next = s->in->r->ingest_ready;
	s->in->r->ingest_ready = s;
}

/* The answer goes out now: the input parked after the message may hold
 * another one, which would hold this answer until its own. */
static void answer_out(struct sess *s)
{
	flush(s);
	process(s, s->pend_off, s->pend_end);
	if (s->eof_seen && !s->closing && !s->submitting) {
		s->quitting = 1;        /* closes once the answers are written */
		flush(s);
	}
}

static void on_connection(uv_stream_t *server, int status);

void ingest_accept_retry(struct relay *r)
{
	for (size_t i = 0; i < r->n_lists; i++) {
		struct ingest *in = r->lists[i]->in;
		if (in && in->accept_stalled) {
			in->accept_stalled = 0;
			on_connection(&in->server.s, 0);
		}
	}
}

void ingest_answers_flush(struct relay *r)
{
	struct sess *s = r->ingest_ready, *fifo = NULL;
	r->ingest_ready = NULL;
	if (!s)
		return;
	log_flush();
	while (s) {             /* pushed last first: answer in the group's order */
		struct sess *next = s->ready_next;
		s->ready_next = fifo;
		fifo = s;
		s = next;
	}
	for (s = fifo; s; s = fifo) {
		fifo = s->ready_next;
		s->ready_next = NULL;
		/* A session closed meanwhile is freed by its close callbacks,
		 * which run after this; it has nothing more to write. */
		if (!s->closing)
			answer_out(s);
	}
}

/* Hand a complete message to the store. Returns 1 when the answer comes
 * later (submitted()), 0 when it was given already. */
static int deliver(struct sess *s)
{
	struct ingest *in = s->in;
	struct relay *r = in->r;
	const uint8_t *msg;
	size_t len;
	const char *from = lmtp_mail_from(s->p);

	int e = lmtp_message(s->p, &msg, &len);
	if (e == IL_ETOOLARGE) {
		/* relay_submit_async never sees it: count the refusal here. */
		r->c.too_large++;
		log_info("ingest", "lmtp_refused", "list=%s reason=too_large bytes=%zu max=%zu from=%s "
			 "rcpts=%zu", in->list, len, r->cfg->max_message_bytes, log_q(from),
			 lmtp_rcpt_count(s->p));
		lmtp_finish(s->p, e, NULL);
		return 0;
	}
	s->submitting = 1;
	s->sync = 1;
	s->answered = 0;
	e = relay_submit_async(r, in->list, msg, len, submitted, s);
	s->sync = 0;
	if (e < 0) {
		s->submitting = 0;
		const char *why = e == IL_ENOTMAIL ? "not_mail" : e == IL_ENOMSGID ? "no_message_id"
			: e == IL_ETOOLARGE ? "too_large" : "tempfail";
		/* A temporary failure is ours to look at; a bad message is the sender's. */
		log_event(e == IL_ENOTMAIL || e == IL_ENOMSGID || e == IL_ETOOLARGE ? IL_LOG_INFO
			  : IL_LOG_WARN, "ingest", "lmtp_refused",
			  "list=%s reason=%s bytes=%zu from=%s rcpts=%zu err=%s", in->list, why, len,
			  log_q(from), lmtp_rcpt_count(s->p), log_q(il_strerror(e)));
		lmtp_finish(s->p, e, NULL);
		return 0;
	}
	if (s->answered) {
		s->submitting = 0;
		answer(s, s->ans_err, s->ans_id, s->ans_kind, s->ans_msgid);
		free(s->ans_msgid);
		s->ans_msgid = NULL;
		return 0;
	}
	return 1;
}

/* Posts refused at MAIL for their SIZE=: counted and logged like those
 * refused at the final dot (deliver()), which is where a client that does
 * not declare a size meets the limit. */
static void count_size_refusals(struct sess *s)
{
	unsigned long long declared;
	const char *from;
	size_t n = lmtp_take_size_refusals(s->p, &declared, &from);
	if (n == 0)
		return;
	struct relay *r = s->in->r;
	r->c.too_large += n;
	log_info("ingest", "lmtp_refused", "list=%s reason=too_large at=mail bytes=%llu max=%zu from=%s "
		 "count=%zu", s->in->list, declared, r->cfg->max_message_bytes, log_q(from), n);
}

/* Feed buf[off..end) to the protocol machine, message by message. */
static void process(struct sess *s, size_t off, size_t end)
{
	const uint8_t *d = (const uint8_t *)s->buf;
	while (!s->closing) {
		size_t used = 0;
		int ev = lmtp_feed(s->p, d + off, end - off, &used);
		off += used;
		count_size_refusals(s);
		if (ev < 0) {
			sess_close(s, "no_memory");
			return;
		}
		if (ev == LMTP_MESSAGE) {
			s->pend_off = off;
			s->pend_end = end;
			/* The replies to MAIL and RCPT wait for the message's own
			 * (submitted() goes on from pend_off): the client has sent
			 * all it can and waits for that one, and one write then
			 * carries the three (RFC 2920 asks for replies before the
			 * server waits for input, not before it works). */
			if (deliver(s)) {
				/* Writes nothing; stops reading if the input
				 * parked after the message fills buf. */
				update_reading(s);
				return;
			}
			flush(s);       /* answered at once: out before a next message */
			continue;
		}
		if (ev == LMTP_CLOSE)
			s->quitting = 1;
		break;
	}
	flush(s);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	(void)buf;      /* always s->buf */
	struct sess *s = st->data;
	if (s->closing)
		return;
	if (nread == UV_EOF && s->submitting) {
		/* Answer the message first (a client may half-close after its
		 * final dot), then close like a QUIT. */
		s->eof_seen = 1;
		update_reading(s);
		return;
	}
	if (nread == UV_EOF && uv_stream_get_write_queue_size(&s->h.s) > 0) {
		s->quitting = 1;        /* our replies first; wrote() closes */
		update_reading(s);
		return;
	}
	if (nread == UV_EOF) {
		sess_close(s, "eof");
		return;
	}
	if (nread == UV_ENOBUFS) {
		/* on_alloc had no room: the input parked after a message fills
		 * buf. Wait for the answer, which reads on. */
		update_reading(s);
		return;
	}
	if (nread < 0) {
		sess_close(s, uv_err_name((int)nread));
		return;
	}
	uv_timer_again(&s->idle);
	if (s->submitting) {
		s->pend_end += (size_t)nread;
		update_reading(s);
		return;
	}
	process(s, 0, (size_t)nread);
}

static void on_idle(uv_timer_t *t)
{
	struct sess *s = t->data;
	if (s->closing || s->submitting)
		return;
	if (s->quitting) {
		/* Our last reply has not drained in a whole idle period: the
		 * client does not read. Hang up. */
		sess_close(s, "timeout");
		return;
	}
	log_info("ingest", "lmtp_timeout", "list=%s peer=%s in_data=%d", s->in->list, log_q(s->peer),
		 lmtp_in_data(s->p));
	static const char bye[] = "421 4.4.2 idle timeout, closing\r\n";
	uint8_t *m = malloc(sizeof(bye) - 1);
	s->quitting = 1;
	update_reading(s);
	if (!m) {
		sess_close(s, "timeout");
		return;
	}
	memcpy(m, bye, sizeof(bye) - 1);
	sess_write(s, m, sizeof(bye) - 1);
}

static void peer_name(struct sess *s)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char host[64];
	snprintf(s->peer, sizeof(s->peer), "unix");
	if (s->in->kind != IL_INGEST_LMTP_TCP ||
	    uv_tcp_getpeername(&s->h.tcp, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		uv_ip4_name(a, host, sizeof(host));
		snprintf(s->peer, sizeof(s->peer), "%s:%u", host, ntohs(a->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		uv_ip6_name(a, host, sizeof(host));
		snprintf(s->peer, sizeof(s->peer), "[%s]:%u", host, ntohs(a->sin6_port));
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct ingest *in = server->data;
	struct relay *r = in->r;
	if (status < 0) {
		log_warn("ingest", "lmtp_accept_failed", "list=%s err=%s", in->list,
			 log_q(uv_strerror(status)));
		return;
	}
	struct sess *s = calloc(1, sizeof(*s));
	if (!s) {
		/* libuv keeps this connection pending and stops accepting until it
		 * is taken: the listener stalls. Out of memory, the daemon is in
		 * trouble anyway; say so loudly. */
		log_err("ingest", "lmtp_accept_failed", "list=%s err=%s", in->list, log_q("out of memory"));
		in->accept_stalled = 1;         /* ingest_accept_retry, on the next tick */
		return;
	}
	s->in = in;
	if (in->kind == IL_INGEST_LMTP_TCP)
		uv_tcp_init(r->loop, &s->h.tcp);
	else
		uv_pipe_init(r->loop, &s->h.pipe, 0);
	uv_timer_init(r->loop, &s->idle);
	s->h.h.data = s;
	s->idle.data = s;
	s->next = in->head;
	if (in->head)
		in->head->prev = s;
	in->head = s;
	in->sessions++;
	if (uv_accept(server, &s->h.s) < 0) {
		sess_close(s, "accept_failed");
		return;
	}
	peer_name(s);
	if (in->sessions > INGEST_MAX_SESSIONS) {
		static const char busy[] = "421 4.3.2 too many sessions, try again later\r\n";
		uint8_t *m = malloc(sizeof(busy) - 1);
		log_warn("ingest", "lmtp_busy", "list=%s peer=%s sessions=%d", in->list, log_q(s->peer),
			 in->sessions - 1);
		s->quitting = 1;
		if (!m) {
			sess_close(s, "busy");
			return;
		}
		memcpy(m, busy, sizeof(busy) - 1);
		sess_write(s, m, sizeof(busy) - 1);
		return;
	}
	if (in->kind == IL_INGEST_LMTP_TCP)
		uv_tcp_nodelay(&s->h.tcp, 1);   /* replies are small and awaited */
	if (!(s->p = lmtp_new(r->cfg->id, r->cfg->max_message_bytes))) {
		sess_close(s, "no_memory");
		return;
	}
	log_debug("ingest", "lmtp_connected", "list=%s peer=%s", in->list, log_q(s->peer));
	uv_timer_start(&s->idle, on_idle, INGEST_IDLE_MS, INGEST_IDLE_MS);
	flush(s);       /* the greeting; starts reading */
}

/* ---- listeners ---- */

static int listen_unix(struct ingest *in, const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (strlen(path) >= sizeof(in->path)) {
		snprintf(err, errlen, "LMTP socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	snprintf(in->path, sizeof(in->path), "%s", path);
	snprintf(in->addr, sizeof(in->addr), "unix:%s", path);
	int e = util_claim_unix_path(path, "LMTP socket", err, errlen);
	if (e < 0) {
		if (!*err)
			snprintf(err, errlen, "LMTP socket %s: %s", path, il_strerror(e));
		return e;
	}
	uv_pipe_init(in->r->loop, &in->server.pipe, 0);
	in->server.h.data = in;
	in->server_open = 1;
	/* Bind under a umask that makes it 0660 from the start: no window in
	 * which others could connect. The MTA reaches it through the group. */
	mode_t old = umask(0117);
	e = uv_pipe_bind(&in->server.pipe, path);
	umask(old);
	if (e < 0) {
		snprintf(err, errlen, "LMTP socket %s: %s", path, uv_strerror(e));
		return e;
	}
	if (chmod(path, 0660) < 0 || lstat(path, &st) < 0) {
		e = -errno;
		snprintf(err, errlen, "LMTP socket %s: %s", path, strerror(errno));
		unlink(path);
		return e;
	}
	in->sock_dev = st.st_dev;
	in->sock_ino = st.st_ino;
	return 0;
}

static int listen_tcp(struct ingest *in, const char *target, char *err, size_t errlen)
{
	char host[256];
	uint16_t port;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *ai = NULL;
	char portstr[8];
	int e = config_split_hostport(target, host, sizeof(host), &port);
	if (e < 0) {
		snprintf(err, errlen, "LMTP address '%s': %s", target, il_strerror(e));
		return e;
	}
	snprintf(in->addr, sizeof(in->addr), "%s", target);
	snprintf(portstr, sizeof(portstr), "%u", port);
	/* Start-up only: a blocking lookup of the configured name is fine here. */
	int g = getaddrinfo(host, portstr, &hints, &ai);
	if (g != 0) {
		snprintf(err, errlen, "LMTP address '%s': %s", target, gai_strerror(g));
		return -EADDRNOTAVAIL;
	}
	uv_tcp_init(in->r->loop, &in->server.tcp);
	in->server.h.data = in;
	in->server_open = 1;
	/* The configured address only (the first it resolves to), never a
	 * wildcard we were not asked for. */
	e = uv_tcp_bind(&in->server.tcp, ai->ai_addr, 0);
	freeaddrinfo(ai);
	if (e < 0) {
		snprintf(err, errlen, "LMTP address '%s': %s", target, uv_strerror(e));
		return e;
	}
	return 0;
}

static void server_closed(uv_handle_t *h)
{
	struct ingest *in = h->data;
	in->server_open = 0;
	ingest_maybe_free(in);
}

/* Close the listener and every session; the last close callback frees in. */
static void ingest_close(struct ingest *in)
{
	if (in->l) {
		in->l->in = NULL;
		in->l = NULL;
	}
	if (in->kind == IL_INGEST_LMTP_UNIX && in->path[0] && in->sock_ino) {
		/* Unlink only our own socket file: a successor may have made a new one. */
		struct stat st;
		if (lstat(in->path, &st) == 0 && st.st_dev == in->sock_dev && st.st_ino == in->sock_ino)
			unlink(in->path);
	}
	for (struct sess *s = in->head; s; s = s->next)
		sess_close(s, "stopping");
	if (in->server_open && !uv_is_closing(&in->server.h))
		uv_close(&in->server.h, server_closed);
	else
		ingest_maybe_free(in);
}

struct ingest *ingest_open(struct relay *r, const struct il_list_conf *lc, char *err,
			   size_t errlen)
{
	struct ingest *in = calloc(1, sizeof(*in));
	if (!in) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	in->r = r;
	in->kind = lc->ingest_kind;
	snprintf(in->list, sizeof(in->list), "%s", lc->name);
	err[0] = 0;     /* the helpers fill it only for the errors they can name */
	int e = in->kind == IL_INGEST_LMTP_UNIX ? listen_unix(in, lc->ingest_target, err, errlen)
						 : listen_tcp(in, lc->ingest_target, err, errlen);
	/* Listening already: libuv reports a TCP address in use only here.
	 * No connection is taken before ingest_attach, which the caller does
	 * in the same loop callback. */
	if (e == 0)
		e = uv_listen(&in->server.s, INGEST_BACKLOG, on_connection);
	if (e < 0) {
		if (!*err)
			snprintf(err, errlen, "LMTP %s: %s", in->addr, il_strerror(e));
		ingest_close(in);
		return NULL;
	}
	return in;
}

void ingest_attach(struct ingest *in, struct list_rt *l)
{
	in->l = l;
	l->in = in;
	log_info("ingest", "lmtp_listening", "list=%s addr=%s", in->list, log_q(in->addr));
}

void ingest_discard(struct ingest *in)
{
	if (in)
		ingest_close(in);
}

int ingest_start(struct relay *r, struct list_rt *l, char *err, size_t errlen)
{
	if (l->conf->ingest_kind == IL_INGEST_NONE || l->in)
		return 0;
	struct ingest *in = ingest_open(r, l->conf, err, errlen);
	if (!in)
		return IL_ECONFIG;
	ingest_attach(in, l);
	return 0;
}

void ingest_stop(struct list_rt *l)
{
	struct ingest *in = l->in;
	if (!in)
		return;
	log_info("ingest", "lmtp_stopping", "list=%s sessions=%d", in->list, in->sessions);
	ingest_close(in);
}
