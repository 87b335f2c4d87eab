/*
 * lmtpload — a small LMTP load generator for the benchmark (scripts/bench).
 *
 *   lmtpload --host 127.0.0.1 --port P | --unix PATH [--conns C] [--messages N]
 *            [--size BYTES] [--rate R] [--prefix ID] [--first I] [--stamp]
 *            [--rcpt ADDR] [--max-retries K] [--timeout SECONDS] [--random-ids]
 *            [--no-chunking]
 *
 * Opens C persistent LMTP connections (LHLO once each) and sends N messages
 * in total over them, message i (I <= i < I+N) carrying the unique
 * Message-ID <ID-i@bench.example> and, with --stamp, a header
 * "X-Bench-Sent: <unix time in microseconds>" written just before its body
 * is sent. --random-ids puts 16 hex digits mixed from i in front
 * (<HHHHHHHHHHHHHHHH.ID-i@bench.example>): mail's own Message-IDs are
 * mostly random, and a store indexes them, so the order they arrive in
 * decides how many index pages each batch touches. Each message is an
 * RFC 5322 message of about BYTES bytes (CRLF line ends, as on the wire).
 * Per connection: MAIL, RCPT, DATA (pipelined when the server offers
 * PIPELINING), wait for 354, body and ".", then wait for the per-recipient
 * reply before the next message on that connection. When the server offers
 * PIPELINING and CHUNKING (RFC 3030), as Postfix's LMTP client would: MAIL,
 * RCPT, "BDAT size LAST" and the body in one go, then the replies
 * (--no-chunking: always DATA).
 * One thread, epoll over every connection (poll() over 48 sockets at each
 * wake-up cost the feed a quarter of its CPU, which the relays it measures
 * share). No connection sends until all
 * of them have answered LHLO, so the clock starts with every one ready.
 *
 * --rate R paces the total to R messages per second (message k of the run
 * may not start before start + k/R); without it, full speed.
 *
 * Replies: 250 counts ok; 4xx counts tempfail and the same message is sent
 * again later on the same connection (after 20 ms, doubling to 1 s), at most
 * K times (default 100), then it counts failed; 5xx counts failed. A
 * connection that drops mid-message is reconnected and the message sent
 * again (counted as a tempfail). Hitting --timeout (default 600 s) counts
 * every unfinished message failed.
 *
 * At the end, one JSON line on stdout:
 *   {"sent":N,"ok":..,"tempfail":..,"failed":..,"seconds":..,
 *    "start_us":..,"end_us":..,"reconnects":..,"bytes":..,
 *    "ack_ms":{"p50":..,"p99":..,"max":..},"cpu_s":..,"chunking":true|false}
 * seconds runs from the first message sent to the last reply; start_us and
 * end_us are the same instants in unix microseconds; ack_ms is the time from
 * the end of a body to its 250 (the ingest's durable acknowledgement).
 * Exit status: 0 if every message ended ok, 1 if any failed, 2 on bad usage
 * or if nothing could connect.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define IN_BUF 16384
#define BACKOFF_MIN_US 20000
#define BACKOFF_MAX_US 1000000
#define RECONNECT_MAX 50

enum state {
	S_CONNECTING,   /* non-blocking connect under way */
	S_GREETING,     /* waiting for 220 */
	S_LHLO,         /* waiting for the LHLO answer */
	S_READY,        /* waiting for the start (every connection ready) */
	S_IDLE,         /* may take a message */
	S_ENVELOPE,     /* RSET/MAIL/RCPT/DATA sent, collecting their replies */
	S_BODY,         /* body sent, waiting for the recipient's reply */
	S_BACKOFF,      /* a tempfail: resend the same message at wake_us */
	S_DOWN,         /* closed unexpectedly: reconnect at wake_us */
	S_QUIT,         /* QUIT sent */
	S_DONE,         /* closed for good */
};

enum cmd { C_RSET, C_MAIL, C_RCPT, C_DATA, C_BDAT };

struct conn {
	int fd;
	enum state st;
	int pipelining;
	int chunking;
	int need_rset;
	int reconnects;         /* consecutive failed (re)connections */
	/* output not yet written */
	char *out;
	size_t out_len, out_off, out_cap;
	/* input not yet parsed */
	char in[IN_BUF];
	size_t in_len;
	/* the envelope commands of the transaction under way */
	enum cmd cmds[4];
	int codes[4];
	int n_cmds, n_sent, n_got;
	/* the message under way */
	long msg;               /* -1: none */
	int retries;
	int64_t wake_us;
	int64_t body_us;        /* monotonic time the body's last byte was queued */
	int ep_fd;              /* the fd registered with epoll, -1: none */
	uint32_t ep_mask;       /* and the events asked for */
};

static struct {
	const char *host, *port, *prefix, *rcpt;
	int conns, stamp, max_retries, random_ids, no_chunking;
	long messages, first;
	size_t size;
	double rate, timeout;
} opt = { "127.0.0.1", NULL, "bench", "bench@bench.example", 16, 0, 100, 0, 0, 1000, 0, 2048, 0, 600 };

static struct {
	long next;              /* next message index (0-based within the run) to start */
	long sent, ok, tempfail, failed, done;
	long reconnects;
	int chunked;            /* some connection used BDAT */
	uint64_t bytes;
	int64_t start_mono, end_mono, start_real;
	double *ack;            /* ms, one per ok message */
	long n_ack;
} g;

static struct addrinfo *g_addr;
static const char *g_unix;             /* --unix PATH instead of --host/--port */
static struct sockaddr_un g_sun;
static struct addrinfo g_unix_ai;
static char g_filler[128];
static char *g_body;                    /* opt.size / 78 numbered body lines */

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t real_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("lmtpload: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void out_reserve(struct conn *c, size_t more)
{
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + more <= c->out_cap)
		return;
	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
		if (c->out_len + more <= c->out_cap)
			return;
	}
	size_t cap = c->out_cap ? c->out_cap : 4096;
	while (cap < c->out_len + more)
		cap *= 2;
	char *p = realloc(c->out, cap);
	if (!p)
		die("out of memory");
	c->out = p;
	c->out_cap = cap;
}

/* Formatted once into the room reserved (once more only if it was short):
 * the feed shares the cores with the relays it measures. */
static void out_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	out_reserve(c, 512);
	size_t room = c->out_cap - c->out_len;
	va_start(ap, fmt);
	int n = vsnprintf(c->out + c->out_len, room, fmt, ap);
	va_end(ap);
	if ((size_t)n >= room) {
		out_reserve(c, (size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(c->out + c->out_len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	c->out_len += (size_t)n;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->ep_fd = -1;          /* closing took it out of the epoll set */
	c->out_len = c->out_off = 0;
	c->in_len = 0;
}

static void conn_connect(struct conn *c)
{
	c->fd = socket(g_addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket: %s", strerror(errno));
	int one = 1;
	if (!g_unix)
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->st = S_CONNECTING;
	c->pipelining = 0;
	c->chunking = 0;
	c->need_rset = 0;
	if (connect(c->fd, g_addr->ai_addr, g_addr->ai_addrlen) == 0)
		c->st = S_GREETING;
	else if (errno != EINPROGRESS)
		c->st = S_CONNECTING;   /* the error shows on the first poll */
}

/* A message is over (ok or failed). */
static void msg_end(struct conn *c)
{
	c->msg = -1;
	c->retries = 0;
	g.done++;
	g.end_mono = mono_us();
	c->st = S_IDLE;
}

static void msg_failed(struct conn *c)
{
	g.failed++;
	msg_end(c);
}

/* A tempfail of the message under way: resend it later, or give up. */
static void msg_tempfail(struct conn *c)
{
	g.tempfail++;
	if (++c->retries > opt.max_retries) {
		msg_failed(c);
		return;
	}
	int shift = c->retries - 1 > 6 ? 6 : c->retries - 1;
	int64_t delay = (int64_t)BACKOFF_MIN_US << shift;
	c->wake_us = mono_us() + (delay > BACKOFF_MAX_US ? BACKOFF_MAX_US : delay);
	c->st = S_BACKOFF;
}

/* The connection is gone: retry its message after reconnecting. */
static void conn_lost(struct conn *c, const char *why)
{
	int had_msg = c->msg >= 0 && (c->st == S_ENVELOPE || c->st == S_BODY);
	conn_close(c);
	if (c->st == S_QUIT) {
		c->st = S_DONE;
		return;
	}
	if (++c->reconnects > RECONNECT_MAX) {
		fprintf(stderr, "lmtpload: connection lost (%s), giving it up\n", why);
		if (c->msg >= 0)
			msg_failed(c);
		c->st = S_DONE;
		return;
	}
	g.reconnects++;
	if (had_msg) {
		g.tempfail++;
		c->retries++;
	}
	int shift = c->reconnects - 1 > 6 ? 6 : c->reconnects - 1;
	int64_t delay = (int64_t)BACKOFF_MIN_US << shift;
	c->wake_us = mono_us() + (delay > BACKOFF_MAX_US ? BACKOFF_MAX_US : delay);
	c->st = S_DOWN;
}

static const char *cmd_text(enum cmd k)
{
	switch (k) {
	case C_RSET: return "RSET";
	case C_MAIL: return "MAIL";
	case C_RCPT: return "RCPT";
	case C_BDAT: return "BDAT";
	default: return "DATA";
	}
}

static size_t append_message(struct conn *c);

/* "BDAT size LAST" and the message after it, which nothing needs to end. */
static void send_bdat(struct conn *c)
{
	size_t start = c->out_len;
	size_t n = append_message(c);
	char head[48];
	int hl = snprintf(head, sizeof(head), "BDAT %zu LAST\r\n", n);
	out_reserve(c, (size_t)hl);
	memmove(c->out + start + hl, c->out + start, n);
	memcpy(c->out + start, head, (size_t)hl);
	c->out_len += (size_t)hl;
	c->body_us = mono_us();
	g.chunked = 1;
}

static void send_cmd(struct conn *c, enum cmd k)
{
	switch (k) {
	case C_RSET: out_printf(c, "RSET\r\n"); break;
	case C_MAIL: out_printf(c, "MAIL FROM:<bench-sender@bench.example>\r\n"); break;
	case C_RCPT: out_printf(c, "RCPT TO:<%s>\r\n", opt.rcpt); break;
	case C_DATA: out_printf(c, "DATA\r\n"); break;
	case C_BDAT: send_bdat(c); break;
	}
	c->n_sent++;
}

/* Start (or restart) the transaction of c->msg. */
static void start_envelope(struct conn *c)
{
	c->n_cmds = c->n_sent = c->n_got = 0;
	if (c->need_rset)
		c->cmds[c->n_cmds++] = C_RSET;
	c->cmds[c->n_cmds++] = C_MAIL;
	c->cmds[c->n_cmds++] = C_RCPT;
	/* BDAT is sent blind with the rest, so only with PIPELINING. */
	c->cmds[c->n_cmds++] = c->chunking && c->pipelining ? C_BDAT : C_DATA;
	c->need_rset = 0;
	c->st = S_ENVELOPE;
	if (c->pipelining)
		for (int i = 0; i < c->n_cmds; i++)
			send_cmd(c, c->cmds[i]);
	else
		send_cmd(c, c->cmds[0]);
}

static const char *rfc5322_date(void)
{
	static char buf[64];
	static time_t last = -1;
	time_t t = time(NULL);
	if (t != last) {        /* once a second, not once a message */
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S +0000", &tm);
		last = t;
	}
	return buf;
}

/* "HHHHHHHHHHHHHHHH." for --random-ids (a bijective mix of i, so unique),
 * else "". */
static const char *id_salt(long i, char *buf, size_t len)
{
	if (!opt.random_ids)
		return "";
	uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ull;
	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 32;
	snprintf(buf, len, "%016" PRIx64 ".", x);
	return buf;
}

/* The message itself, appended to the output; returns its length. No line
 * starts with '.', so it needs no dot-stuffing after DATA either. */
static size_t append_message(struct conn *c)
{
	long idx = opt.first + c->msg;
	char salt[24];
	const char *date = rfc5322_date();
	size_t start = c->out_len;
	out_printf(c, "From: Bench Sender <bench-sender@bench.example>\r\n"
		   "To: <%s>\r\n"
		   "Subject: bench message %ld\r\n"
		   "Date: %s\r\n"
		   "Message-ID: <%s%s-%ld@bench.example>\r\n",
		   opt.rcpt, idx, date, id_salt(idx, salt, sizeof(salt)), opt.prefix, idx);
	if (opt.stamp)
		out_printf(c, "X-Bench-Sent: %" PRId64 "\r\n", real_us());
	out_printf(c, "MIME-Version: 1.0\r\n"
		   "Content-Type: text/plain; charset=us-ascii\r\n"
		   "\r\n"
		   "This is benchmark message %ld.\r\n", idx);
	/* Body lines of 76 characters + CRLF until about opt.size bytes:
	 * numbered, from the block made once (g_body). */
	size_t head = c->out_len - start;
	size_t lines = head + 78 <= opt.size ? (opt.size - head) / 78 : 0;
	out_reserve(c, lines * 78);
	memcpy(c->out + c->out_len, g_body, lines * 78);
	c->out_len += lines * 78;
	g.bytes += c->out_len - start;
	return c->out_len - start;
}

/* After 354: the message and its ending dot. */
static void send_body(struct conn *c)
{
	append_message(c);
	out_printf(c, ".\r\n");
	c->body_us = mono_us();
	c->st = S_BODY;
}

static void body_reply(struct conn *c, int code);

/* The reply to the command n_got of the envelope. */
static void envelope_reply(struct conn *c, int code)
{
	enum cmd k = c->cmds[c->n_got];
	c->codes[c->n_got++] = code;
	int good = k == C_DATA ? code == 354 : (k == C_RSET || code / 100 == 2);
	if (!c->pipelining && good && c->n_sent < c->n_cmds) {
		send_cmd(c, c->cmds[c->n_sent]);
		return;
	}
	if (c->n_got < c->n_sent)
		return;         /* more pipelined replies to come */
	if (good && k == C_DATA) {
		send_body(c);
		return;
	}
	if (k == C_BDAT) {
		/* BDAT LAST's reply is the recipient's: the message's outcome,
		 * unless MAIL or RCPT was refused before it. */
		int fine = 1;
		for (int i = 0; i < c->n_got - 1; i++)
			fine &= c->cmds[i] == C_RSET || c->codes[i] / 100 == 2;
		if (fine) {
			body_reply(c, code);
			return;
		}
	}
	/* The transaction failed before the body: judge by the first bad reply. */
	int bad = code;
	for (int i = 0; i < c->n_got; i++) {
		enum cmd ki = c->cmds[i];
		if (ki == C_RSET)
			continue;
		if (ki == C_DATA ? c->codes[i] != 354 : c->codes[i] / 100 != 2) {
			bad = c->codes[i];
			break;
		}
	}
	c->need_rset = 1;
	if (bad / 100 == 4)
		msg_tempfail(c);
	else {
		fprintf(stderr, "lmtpload: message %ld: %s refused with %d\n", opt.first + c->msg,
			cmd_text(k), bad);
		msg_failed(c);
	}
}

static void body_reply(struct conn *c, int code)
{
	if (code / 100 == 2) {
		int64_t now = mono_us();
		g.ok++;
		if (g.n_ack < opt.messages)
			g.ack[g.n_ack++] = (double)(now - c->body_us) / 1000.0;
		msg_end(c);
	} else if (code / 100 == 4) {
		msg_tempfail(c);
	} else {
		fprintf(stderr, "lmtpload: message %ld: refused after DATA with %d\n", opt.first + c->msg,
			code);
		msg_failed(c);
	}
}

/* One complete reply (the last line of a multi-line one). */
static void on_reply(struct conn *c, int code)
{
	switch (c->st) {
	case S_GREETING:
		if (code != 220) {
			/* e.g. 421 too many sessions: try again later */
			conn_lost(c, "greeting refused");
			return;
		}
		out_printf(c, "LHLO bench.example\r\n");
		c->st = S_LHLO;
		break;
	case S_LHLO:
		if (code != 250)
			die("LHLO refused with %d", code);
		c->reconnects = 0;
		c->st = g.start_mono ? S_IDLE : S_READY;
		break;
	case S_ENVELOPE:
		envelope_reply(c, code);
		break;
	case S_BODY:
		body_reply(c, code);
		break;
	case S_QUIT:
		conn_close(c);
		c->st = S_DONE;
		break;
	default:
		if (code == 421) {
			conn_lost(c, "421");
			return;
		}
		fprintf(stderr, "lmtpload: unexpected reply %d in state %d\n", code, (int)c->st);
		break;
	}
}

/* Parse the complete lines in c->in. Returns -1 if the connection was lost. */
static int parse_input(struct conn *c)
{
	size_t off = 0;
	for (;;) {
		char *nl = memchr(c->in + off, '\n', c->in_len - off);
		if (!nl)
			break;
		char *line = c->in + off;
		size_t len = (size_t)(nl - line);
		off += len + 1;
		if (len < 3 || line[0] < '1' || line[0] > '5') {
			conn_lost(c, "garbled reply");
			return -1;
		}
		int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (c->st == S_LHLO && len >= 14 && !strncasecmp(line + 4, "PIPELINING", 10))
			c->pipelining = 1;
		if (c->st == S_LHLO && len >= 12 && !strncasecmp(line + 4, "CHUNKING", 8) &&
		    !opt.no_chunking)
			c->chunking = 1;
		if (len > 3 && line[3] == '-')
			continue;
		int fd = c->fd;
		on_reply(c, code);
		if (c->fd != fd)
			return -1;      /* closed (and maybe reopened) */
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	if (c->in_len == sizeof(c->in)) {
		conn_lost(c, "reply line too long");
		return -1;
	}
	return 0;
}

static void do_write(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_lost(c, strerror(errno));
			return;
		}
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
}

static void do_read(struct conn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
		if (n == 0) {
			conn_lost(c, "closed by the server");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_lost(c, strerror(errno));
			return;
		}
		c->in_len += (size_t)n;
		if (parse_input(c) < 0)
			return;
		if ((size_t)n < sizeof(c->in) - c->in_len)
			return;
	}
}

/* Ask epoll for want on c's fd (index i). A closed fd left the set by
 * itself, and its number may be back for the next connection: ADD and MOD
 * each fall back to the other. */
static void ep_sync(int ep, struct conn *c, int i, uint32_t want)
{
	struct epoll_event ev = { .events = want, .data.u32 = (uint32_t)i };
	if (c->ep_fd == c->fd && c->ep_mask == want)
		return;
	int op = c->ep_fd == c->fd ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(ep, op, c->fd, &ev) < 0) {
		op = op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
		if (epoll_ctl(ep, op, c->fd, &ev) < 0)
			die("epoll_ctl: %s", strerror(errno));
	}
	c->ep_fd = c->fd;
	c->ep_mask = want;
}

/* Give idle connections work; returns the next instant (mono µs) something
 * is due, or INT64_MAX. */
static int64_t schedule(struct conn *cs, int n, int64_t now)
{
	int64_t next = INT64_MAX;
	for (int i = 0; i < n; i++) {
		struct conn *c = &cs[i];
		if (!g.start_mono && c->st != S_DOWN)
			continue;
		if (c->st == S_BACKOFF) {
			if (now >= c->wake_us)
				start_envelope(c);
			else if (c->wake_us < next)
				next = c->wake_us;
		} else if (c->st == S_DOWN) {
			if (now >= c->wake_us)
				conn_connect(c);
			else if (c->wake_us < next)
				next = c->wake_us;
		} else if (c->st == S_IDLE && c->msg >= 0) {
			start_envelope(c);      /* resend after a reconnection */
		} else if (c->st == S_IDLE && g.next < opt.messages) {
			if (opt.rate > 0) {
				int64_t due = g.start_mono + (int64_t)((double)g.next * 1e6 / opt.rate);
				if (now < due) {
					if (due < next)
						next = due;
					continue;
				}
			}
			c->msg = g.next++;
			c->retries = 0;
			g.sent++;
			start_envelope(c);
		} else if (c->st == S_IDLE && g.done >= opt.messages) {
			out_printf(c, "QUIT\r\n");
			c->st = S_QUIT;
		}
	}
	return next;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(const double *v, long n, double p)
{
	if (n == 0)
		return 0;
	long i = (long)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static void usage(void)
{
	fputs("usage: lmtpload --port P [--host H] | --unix PATH [--conns C] [--messages N] [--size BYTES]\n"
	      "                [--rate R] [--prefix ID] [--first I] [--stamp] [--rcpt ADDR]\n"
	      "                [--max-retries K] [--timeout SECONDS] [--random-ids] [--no-chunking]\n",
	      stderr);
	exit(2);
}

static long parse_long(const char *s, const char *what, long min)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min)
		die("bad %s: %s", what, s);
	return v;
}

static double parse_double(const char *s, const char *what)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || end == s || v < 0)
		die("bad %s: %s", what, s);
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "unix", required_argument, NULL, 'u' },
		{ "conns", required_argument, NULL, 'c' },
		{ "messages", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "rate", required_argument, NULL, 'r' },
		{ "prefix", required_argument, NULL, 'i' },
		{ "first", required_argument, NULL, 'f' },
		{ "stamp", no_argument, NULL, 'S' },
		{ "rcpt", required_argument, NULL, 'R' },
		{ "max-retries", required_argument, NULL, 'm' },
		{ "timeout", required_argument, NULL, 't' },
		{ "random-ids", no_argument, NULL, 'I' },
		{ "no-chunking", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, '?' },
		{ 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h': opt.host = optarg; break;
		case 'p': opt.port = optarg; break;
		case 'u': g_unix = optarg; break;
		case 'c': opt.conns = (int)parse_long(optarg, "--conns", 1); break;
		case 'n': opt.messages = parse_long(optarg, "--messages", 0); break;
		case 's': opt.size = (size_t)parse_long(optarg, "--size", 0); break;
		case 'r': opt.rate = parse_double(optarg, "--rate"); break;
		case 'i': opt.prefix = optarg; break;
		case 'f': opt.first = parse_long(optarg, "--first", 0); break;
		case 'S': opt.stamp = 1; break;
		case 'R': opt.rcpt = optarg; break;
		case 'm': opt.max_retries = (int)parse_long(optarg, "--max-retries", 0); break;
		case 't': opt.timeout = parse_double(optarg, "--timeout"); break;
		case 'I': opt.random_ids = 1; break;
		case 'C': opt.no_chunking = 1; break;
		default: usage();
		}
	}
	if (optind != argc || !(opt.port || g_unix))
		usage();
	if (opt.conns > 1000)
		die("--conns: at most 1000");
	if (opt.conns > opt.messages && opt.messages > 0)
		opt.conns = (int)opt.messages;
	for (size_t i = 0; i < sizeof(g_filler); i++)
		g_filler[i] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[(i * 7 + 3) % 62];
	if (!(g_body = malloc(opt.size / 78 * 78 + 80)))
		die("out of memory");
	for (size_t l = 0; l < opt.size / 78; l++) {
		char *b = g_body + l * 78;
		char num[16];
		int n = snprintf(num, sizeof(num), "%06zu ", l);
		memcpy(b, num, (size_t)n);
		memcpy(b + n, g_filler, 76 - (size_t)n);
		memcpy(b + 76, "\r\n", 2);
	}

	if (g_unix) {
		/* An MTA on the relay's host delivers over a socket file
		 * (Postfix: lmtp:unix:PATH). */
		if (strlen(g_unix) >= sizeof(g_sun.sun_path))
			die("--unix: path too long");
		g_sun.sun_family = AF_UNIX;
		strcpy(g_sun.sun_path, g_unix);
		g_unix_ai.ai_family = AF_UNIX;
		g_unix_ai.ai_addr = (struct sockaddr *)&g_sun;
		g_unix_ai.ai_addrlen = sizeof(g_sun);
		g_addr = &g_unix_ai;
		opt.host = "unix";
		opt.port = g_unix;
	} else {
		struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
					  .ai_flags = AI_NUMERICSERV };
		int e = getaddrinfo(opt.host, opt.port, &hints, &g_addr);
		if (e)
			die("%s:%s: %s", opt.host, opt.port, gai_strerror(e));
	}
	g.ack = calloc((size_t)opt.messages + 1, sizeof(double));
	struct conn *cs = calloc((size_t)opt.conns, sizeof(*cs));
	struct epoll_event *evs = calloc((size_t)opt.conns, sizeof(*evs));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!g.ack || !cs || !evs)
		die("out of memory");
	if (ep < 0)
		die("epoll_create1: %s", strerror(errno));
	for (int i = 0; i < opt.conns; i++) {
		cs[i].fd = -1;
		cs[i].ep_fd = -1;
		cs[i].msg = -1;
		conn_connect(&cs[i]);
	}

	int64_t t_begin = mono_us();
	int64_t deadline = opt.timeout > 0 ? t_begin + (int64_t)(opt.timeout * 1e6) : INT64_MAX;
	for (;;) {
		int64_t now = mono_us();
		if (!g.start_mono) {
			/* Start once every connection is ready (or given up). */
			int ready = 0, waiting = 0;
			for (int i = 0; i < opt.conns; i++) {
				if (cs[i].st == S_READY)
					ready++;
				else if (cs[i].st != S_DONE)
					waiting++;
			}
			if (!waiting) {
				if (!ready)
					die("no connection to %s:%s could be set up", opt.host, opt.port);
				g.start_mono = now;
				g.end_mono = now;
				g.start_real = real_us();
				for (int i = 0; i < opt.conns; i++)
					if (cs[i].st == S_READY)
						cs[i].st = S_IDLE;
			}
		}
		int64_t next = schedule(cs, opt.conns, now);
		int live = 0;
		for (int i = 0; i < opt.conns; i++) {
			struct conn *c = &cs[i];
			if (c->fd >= 0 && c->out_len > c->out_off && c->st != S_CONNECTING)
				do_write(c);
			if (c->fd < 0) {
				c->ep_fd = -1;
				if (c->st != S_DONE)
					live++;
				continue;
			}
			live++;
			ep_sync(ep, c, i, EPOLLIN | (c->st == S_CONNECTING || c->out_len > c->out_off
						     ? EPOLLOUT : 0));
		}
		if (!live)
			break;
		if (g.done >= opt.messages) {
			int quitting = 0;
			for (int i = 0; i < opt.conns; i++)
				if (cs[i].st == S_QUIT || cs[i].st == S_IDLE)
					quitting++;
			if (!quitting)
				break;
		}
		if (now >= deadline) {
			fprintf(stderr, "lmtpload: timed out after %.0f s with %ld of %ld messages done\n",
				opt.timeout, g.done, opt.messages);
			for (int i = 0; i < opt.conns; i++)
				if (cs[i].msg >= 0)
					g.failed++;
			g.failed += opt.messages - g.next;
			break;
		}
		int64_t wait = next == INT64_MAX ? 100000 : next - now;
		if (deadline - now < wait)
			wait = deadline - now;
		if (wait < 0)
			wait = 0;
		if (wait > 100000)
			wait = 100000;
		int pn = epoll_wait(ep, evs, opt.conns, (int)((wait + 999) / 1000));
		if (pn < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (int k = 0; k < pn; k++) {
			struct conn *c = &cs[evs[k].data.u32];
			uint32_t re = evs[k].events;
			if (c->fd < 0 || c->fd != c->ep_fd)
				continue;
			if (c->st == S_CONNECTING) {
				int err = 0;
				socklen_t el = sizeof(err);
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err) {
					conn_lost(c, strerror(err));
					continue;
				}
				if (!(re & (EPOLLOUT | EPOLLIN)))
					continue;
				c->st = S_GREETING;
			}
			if (re & (EPOLLIN | EPOLLHUP | EPOLLERR))
				do_read(c);
			if (c->fd >= 0 && c->out_len > c->out_off)
				do_write(c);
		}
	}
	for (int i = 0; i < opt.conns; i++)
		conn_close(&cs[i]);

	qsort(g.ack, (size_t)g.n_ack, sizeof(double), cmp_double);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	double secs = g.start_mono ? (double)(g.end_mono - g.start_mono) / 1e6 : 0;
	printf("{\"sent\":%ld,\"ok\":%ld,\"tempfail\":%ld,\"failed\":%ld,\"seconds\":%.6f,"
	       "\"start_us\":%" PRId64 ",\"end_us\":%" PRId64 ",\"reconnects\":%ld,\"bytes\":%" PRIu64 ","
	       "\"ack_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},\"cpu_s\":%.3f,\"chunking\":%s}\n",
	       g.sent, g.ok, g.tempfail, g.failed, secs, g.start_real,
	       g.start_real + (g.end_mono - g.start_mono), g.reconnects, g.bytes,
	       pct(g.ack, g.n_ack, 0.50), pct(g.ack, g.n_ack, 0.99),
	       g.n_ack ? g.ack[g.n_ack - 1] : 0.0, cpu, g.chunked ? "true" : "false");
	fflush(stdout);
	if (!g_unix)
		freeaddrinfo(g_addr);
	free(g_body);
	return g.failed || g.ok < opt.messages ? 1 : 0;
}
