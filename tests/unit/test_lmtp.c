/*
 * test_lmtp.c — the LMTP state machine (relay/lmtp.c) without sockets:
 * pipelined commands in one buffer, the same bytes fed one at a time,
 * dot-unstuffing and the end of DATA, oversized messages, bad command
 * sequences, long lines, and one reply per recipient.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "il/error.h"
#include "relay/lmtp.h"

#define MAX_MSGS 8

/* Everything a session said and every message it handed over. */
struct run {
	char *out;
	size_t out_len;
	uint8_t *msg[MAX_MSGS];
	size_t msg_len[MAX_MSGS];
	int msg_rc[MAX_MSGS];
	int n_msgs;
	int closed;
	size_t consumed;                /* bytes taken before LMTP_CLOSE */
	size_t size_refused;            /* lmtp_take_size_refusals(), summed */
	unsigned long long size_declared;
	char size_from[64];
};

static void take_output(struct lmtp *s, struct run *r)
{
	size_t n;
	uint8_t *o = lmtp_take_output(s, &n);
	if (!o)
		return;
	r->out = realloc(r->out, r->out_len + n + 1);
	memcpy(r->out + r->out_len, o, n);
	r->out_len += n;
	r->out[r->out_len] = 0;
	free(o);
}

/* Feed in[0..len) in pieces of chunk bytes; each message is answered with
 * results[i] (0 when the array is shorter). */
static void drive(struct lmtp *s, const char *in, size_t len, size_t chunk, struct run *r,
		  const int *results, int n_results)
{
	size_t off = 0;
	while (off < len && !r->closed) {
		size_t n = len - off < chunk ? len - off : chunk, p = 0;
		while (!r->closed) {
			size_t used = 0;
			int ev = lmtp_feed(s, (const uint8_t *)in + off + p, n - p, &used);
			p += used;
			const char *from;
			size_t k = lmtp_take_size_refusals(s, &r->size_declared, &from);
			if (k) {
				r->size_refused += k;
				snprintf(r->size_from, sizeof(r->size_from), "%s", from);
			}
			CHECK(ev >= 0);
			if (ev < 0)
				return;
			if (ev == LMTP_MESSAGE) {
				const uint8_t *m;
				size_t ml;
				int i = r->n_msgs;
				CHECK(i < MAX_MSGS);
				if (i >= MAX_MSGS)
					return;
				r->msg_rc[i] = lmtp_message(s, &m, &ml);
				r->msg_len[i] = ml;
				r->msg[i] = malloc(ml + 1);
				if (r->msg_rc[i] == 0)
					memcpy(r->msg[i], m, ml);
				r->n_msgs++;
				lmtp_finish(s, i < n_results ? results[i] : 0, "as X");
				continue;
			}
			if (ev == LMTP_CLOSE) {
				r->closed = 1;
				r->consumed = off + p;
			}
			CHECK(ev == LMTP_CLOSE || p == n);
			break;
		}
		off += n;
		take_output(s, r);
	}
	take_output(s, r);
}

static void run_free(struct run *r)
{
	free(r->out);
	for (int i = 0; i < r->n_msgs; i++)
		free(r->msg[i]);
	memset(r, 0, sizeof(*r));
}

/* A whole session in one string, with results; returns the run. */
static struct run session(size_t max, const char *in, size_t chunk, const int *res, int n_res)
{
	struct run r = { 0 };
	struct lmtp *s = lmtp_new("relay.test", max);
	CHECK(s != NULL);
	if (!s)
		exit(2);
	drive(s, in, strlen(in), chunk, &r, res, n_res);
	lmtp_free(s);
	return r;
}

static int has(const struct run *r, const char *needle)
{
	return r->out && strstr(r->out, needle) != NULL;
}

static int count(const struct run *r, const char *needle)
{
	int n = 0;
	for (const char *p = r->out; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static const char PIPELINED[] =
	"LHLO mta.example.org\r\n"
	"MAIL FROM:<owner@example.org> BODY=8BITMIME SIZE=120\r\n"
	"RCPT TO:<incidents@relay.test>\r\n"
	"RCPT TO:<other@relay.test>\r\n"
	"DATA\r\n"
	"Message-ID: <a@b>\r\n"
	"\r\n"
	"..stuffed\r\n"
	"line.with.dots\r\n"
	".\r\n"
	"NOOP\r\n"
	"QUIT\r\n"
	"NOOP after quit\r\n";

static const char PIPELINED_OUT[] =
	"220 relay.test LMTP interlist ready\r\n"
	"250-relay.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
	"250-CHUNKING\r\n250 SIZE 1000\r\n"
	"250 2.1.0 sender OK\r\n"
	"250 2.1.5 recipient OK\r\n"
	"250 2.1.5 recipient OK\r\n"
	"354 go ahead, end with <CRLF>.<CRLF>\r\n"
	"250 2.0.0 <incidents@relay.test> accepted as X\r\n"
	"250 2.0.0 <other@relay.test> accepted as X\r\n"
	"250 2.0.0 OK\r\n"
	"221 2.0.0 relay.test closing\r\n";

static const char PIPELINED_MSG[] = "Message-ID: <a@b>\r\n\r\n.stuffed\r\nline.with.dots\r\n";

static void test_pipelined(void)
{
	/* One buffer, one byte at a time, and odd chunk sizes: the same. */
	size_t chunks[] = { sizeof(PIPELINED), 1, 2, 3, 7, 13, 64 };
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		struct run r = session(1000, PIPELINED, chunks[i], NULL, 0);
		CHECK_STR(r.out, PIPELINED_OUT);
		CHECK_EQ(r.n_msgs, 1);
		CHECK_EQ(r.msg_rc[0], 0);
		CHECK_EQ(r.msg_len[0], strlen(PIPELINED_MSG));
		CHECK(r.n_msgs == 1 && memcmp(r.msg[0], PIPELINED_MSG, strlen(PIPELINED_MSG)) == 0);
		CHECK(r.closed);
		/* Nothing after QUIT is taken. */
		CHECK_EQ(r.consumed, strlen(PIPELINED) - strlen("NOOP after quit\r\n"));
		run_free(&r);
	}
}

static void test_several_messages(void)
{
	const char *in =
		"LHLO x\r\n"
		"MAIL FROM:<>\r\nRCPT TO:<l@x>\r\nDATA\r\nMessage-ID: <1@x>\r\n\r\none\r\n.\r\n"
		"MAIL FROM:<a@x>\r\nRCPT TO:<l@x>\r\nDATA\r\nMessage-ID: <2@x>\r\n\r\ntwo\r\n.\r\n"
		"MAIL FROM:<a@x>\r\nRCPT TO:<l@x>\r\nDATA\r\nbad\r\n.\r\nQUIT\r\n";
	int res[] = { 0, IL_ENOMSGID, IL_EFULL };
	for (size_t chunk = 1; chunk < 40; chunk += 6) {
		struct run r = session(1000, in, chunk, res, 3);
		CHECK_EQ(r.n_msgs, 3);
		CHECK(r.n_msgs == 3 && r.msg_len[2] == 5 && !memcmp(r.msg[2], "bad\r\n", 5));
		CHECK(has(&r, "250 2.0.0 <l@x> accepted as X\r\n"));
		CHECK(has(&r, "550 5.6.0 <l@x> message has no Message-ID as X\r\n"));
		CHECK(has(&r, "451 4.3.0 <l@x> "));
		CHECK_EQ(count(&r, "354 "), 3);
		CHECK(r.closed);
		run_free(&r);
	}
}

static void test_results(void)
{
	static const struct {
		int rc;
		const char *code;
	} cases[] = {
		{ 0, "250 2.0.0 <" }, { IL_ETOOLARGE, "552 5.3.4 <" }, { IL_ENOTMAIL, "550 5.6.0 <" },
		{ IL_ENOMSGID, "550 5.6.0 <" }, { IL_EFULL, "451 4.3.0 <" }, { -EIO, "451 4.3.0 <" },
		{ IL_ESTORE, "451 4.3.0 <" },
	};
	const char *in = "LHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<r1@x>\r\nRCPT TO:<r2@x>\r\n"
			 "RCPT TO:<r3@x>\r\nDATA\r\nm\r\n.\r\n";
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct run r = session(1000, in, 1000, &cases[i].rc, 1);
		/* RFC 2033: one reply per accepted recipient, in RCPT order. */
		CHECK_EQ(count(&r, cases[i].code), 3);
		const char *a = strstr(r.out, "<r1@x>"), *b = strstr(r.out, "<r2@x>"),
			   *c = strstr(r.out, "<r3@x>");
		CHECK(a && b && c && a < b && b < c);
		run_free(&r);
	}
}

static void test_dots(void)
{
	static const struct {
		const char *data, *msg;
	} cases[] = {
		{ ".\r\n", "" },                                /* empty message */
		{ "..\r\n.\r\n", ".\r\n" },                     /* a line of one dot */
		{ "...x\r\n.\r\n", "..x\r\n" },
		{ "a.\r\n.b\r\n.\r\n", "a.\r\nb\r\n" },
		/* Bare LF never makes a line start: no unstuffing, no end. */
		{ "a\n.\nb\n..c\r\n.\r\n", "a\n.\nb\n..c\r\n" },
		/* "." CR followed by other than LF: the dot is stuffing, CR is data. */
		{ ".\rx\r\n.\r\n", "\rx\r\n" },
		{ ".\r\r\n.\r\n", "\r\r\n" },
		{ "x\r\r\n.\r\n", "x\r\r\n" },
		{ "\r\n\r\n.\r\n", "\r\n\r\n" },
		{ "no newline at end\r\n.\r\n", "no newline at end\r\n" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char in[512];
		snprintf(in, sizeof(in), "LHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<l@x>\r\nDATA\r\n%sQUIT\r\n",
			 cases[i].data);
		for (size_t chunk = 1; chunk <= 5; chunk += 4) {
			struct run r = session(1000, in, chunk, NULL, 0);
			CHECK_EQ(r.n_msgs, 1);
			if (r.n_msgs == 1) {
				CHECK_EQ(r.msg_len[0], strlen(cases[i].msg));
				CHECK(!memcmp(r.msg[0], cases[i].msg, strlen(cases[i].msg)));
			}
			CHECK(r.closed);
			run_free(&r);
		}
	}
	/* Without the final dot the message never completes. */
	struct run r = session(1000, "LHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<l@x>\r\nDATA\r\nabc\r\n"
				     "QUIT\r\n.\n", 1, NULL, 0);
	CHECK_EQ(r.n_msgs, 0);
	CHECK(!r.closed);
	run_free(&r);
}

static void test_oversized(void)
{
	char in[4096], body[1024];
	memset(body, 'x', sizeof(body) - 1);
	body[sizeof(body) - 1] = 0;
	snprintf(in, sizeof(in),
		 "LHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<l@x>\r\nRCPT TO:<m@x>\r\nDATA\r\n%s\r\n.\r\n"
		 "MAIL FROM:<a@x>\r\nRCPT TO:<l@x>\r\nDATA\r\nsmall\r\n.\r\nQUIT\r\n", body);
	for (size_t chunk = 1; chunk <= 4096; chunk *= 8) {
		struct lmtp *s = lmtp_new("t", 100);
		struct run r = { 0 };
		size_t off = 0, len = strlen(in);
		int msgs = 0;
		while (off < len) {
			size_t used, n = len - off < chunk ? len - off : chunk;
			int ev = lmtp_feed(s, (const uint8_t *)in + off, n, &used);
			off += used;
			if (ev == LMTP_MESSAGE) {
				const uint8_t *m;
				size_t ml;
				int rc = lmtp_message(s, &m, &ml);
				if (msgs == 0) {
					CHECK_EQ(rc, IL_ETOOLARGE);
					CHECK_EQ(ml, strlen(body) + 2);   /* the size seen */
					CHECK(m == NULL);
					/* Feeding while a message waits takes nothing. */
					size_t u2 = 1;
					CHECK_EQ(lmtp_feed(s, (const uint8_t *)"NOOP\r\n", 6, &u2),
						 LMTP_MESSAGE);
					CHECK_EQ(u2, 0);
				} else {
					CHECK_EQ(rc, 0);
					CHECK(ml == 7 && !memcmp(m, "small\r\n", 7));
				}
				lmtp_finish(s, rc, NULL);
				msgs++;
				continue;
			}
			if (ev == LMTP_CLOSE)
				break;
			CHECK_EQ(ev, LMTP_MORE);
		}
		take_output(s, &r);
		CHECK_EQ(msgs, 2);
		CHECK_EQ(count(&r, "552 5.3.4 <"), 2);
		CHECK(has(&r, "552 5.3.4 <l@x> message too big for this list\r\n"));
		CHECK(has(&r, "250 2.0.0 <l@x> accepted\r\n"));
		run_free(&r);
		lmtp_free(s);
	}
	/* Exactly at the limit is fine; one over is not. */
	struct run r = session(5, "LHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<l@x>\r\nDATA\r\nabc\r\n.\r\n"
				  "MAIL FROM:<a@x>\r\nRCPT TO:<l@x>\r\nDATA\r\nabcd\r\n.\r\n", 3, NULL, 0);
	CHECK_EQ(r.n_msgs, 2);
	CHECK_EQ(r.msg_rc[0], 0);
	CHECK_EQ(r.msg_rc[1], IL_ETOOLARGE);
	run_free(&r);
	/* SIZE over the limit is refused at MAIL. */
	r = session(100, "LHLO x\r\nMAIL FROM:<a@x> SIZE=101\r\nMAIL FROM:<a@x> SIZE=100\r\n"
			 "MAIL FROM:<a@x> SIZE=99999999999999999999999\r\n", 1000, NULL, 0);
	CHECK(has(&r, "552 5.3.4 message size exceeds fixed limit of 100 bytes\r\n"));
	CHECK(has(&r, "250 2.1.0 sender OK\r\n"));
	CHECK(has(&r, "503 5.5.1 nested MAIL"));
	/* The 552 is a refused post the server counts (the overflowing SIZE is
	 * a syntax error, 501, and is not). */
	CHECK_EQ(r.size_refused, 1);
	CHECK_EQ(r.size_declared, 101);
	CHECK_STR(r.size_from, "a@x");
	run_free(&r);
	/* Refusals for size are not protocol errors: 25 of them (more than
	 * LMTP_MAX_ERRORS) leave the session open. */
	char many[2048] = "LHLO x\r\n";
	for (int i = 0; i < 25; i++)
		strcat(many, "MAIL FROM:<big@x> SIZE=5000\r\n");
	strcat(many, "MAIL FROM:<a@x> SIZE=10\r\nRCPT TO:<l@x>\r\nDATA\r\nhi\r\n.\r\n");
	r = session(100, many, 1000, NULL, 0);
	CHECK_EQ(r.size_refused, 25);
	CHECK_EQ(r.n_msgs, 1);
	CHECK(!r.closed);
	CHECK(!has(&r, "421"));
	run_free(&r);
}

static void test_sequences(void)
{
	struct run r = session(1000,
			       "MAIL FROM:<a@x>\r\n"            /* before LHLO */
			       "HELO x\r\nEHLO x\r\n"           /* SMTP greetings */
			       "LHLO\r\n"                       /* no domain */
			       "LHLO x\r\n"
			       "RCPT TO:<l@x>\r\n"              /* before MAIL */
			       "DATA\r\n"                       /* before MAIL */
			       "MAIL FROM:<a@x>\r\n"
			       "MAIL FROM:<a@x>\r\n"            /* nested */
			       "DATA\r\n"                       /* no RCPT */
			       "RCPT TO:<>\r\n"                 /* empty recipient */
			       "RCPT TO:l@x\r\n"                /* no brackets */
			       "RCPT TO:<l@x> NOTIFY=NEVER\r\n" /* unknown parameter */
			       "RCPT TO:<l@x>\r\n"
			       "RSET\r\n"
			       "DATA\r\n"                       /* RSET forgot the transaction */
			       "MAIL FROM:<a@x> FOO=1\r\n"
			       "MAIL FROM:<a\x01@x>\r\n"
			       /* A refused BDAT's 10 bytes are dropped, never run. */
			       "VRFY x\r\nSTARTTLS\r\nBDAT 10\r\nQUIT\r\nRSET\r\n"
			       "noop\r\nrset\r\n"
			       "QUIT\r\n", 1000, NULL, 0);
	const char *want[] = {
		"220 ",
		"503 5.5.1 send LHLO first",
		"500 5.5.1 this is LMTP: use LHLO",
		"500 5.5.1 this is LMTP: use LHLO",
		"501 5.5.4 LHLO needs a domain",
		"250-PIPELINING",
		"503 5.5.1 need MAIL before RCPT",
		"503 5.5.1 need MAIL before DATA",
		"250 2.1.0 sender OK",
		"503 5.5.1 nested MAIL",
		"503 5.5.1 need RCPT before DATA",
		"501 5.1.3 bad recipient",
		"501 5.1.3 bad recipient",
		"555 5.5.4 unsupported RCPT parameter",
		"250 2.1.5 recipient OK",
		"250 2.0.0 reset",
		"503 5.5.1 need MAIL before DATA",
		"555 5.5.4 unsupported MAIL parameter",
		"501 5.1.7 bad sender",
		"500 5.5.1 command not recognised",
		"500 5.5.1 command not recognised",
		"503 5.5.1 need MAIL before BDAT",
		"500 5.5.2 syntax error",
		"250 2.0.0 OK",
		"250 2.0.0 reset",
		"221 2.0.0",
	};
	/* Every reply in this order, and nothing more. */
	const char *p = r.out;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const char *q = p ? strstr(p, want[i]) : NULL;
		if (!q)
			fprintf(stderr, "missing in order: %s\n", want[i]);
		CHECK(q != NULL);
		p = q ? q + strlen(want[i]) : p;
	}
	CHECK_EQ(count(&r, "\r\n"), (long long)(sizeof(want) / sizeof(want[0])) + 5);
	CHECK_EQ(r.n_msgs, 0);
	CHECK(r.closed);
	run_free(&r);
}

static void test_long_lines(void)
{
	size_t n = 200000;
	char *in = malloc(n);
	/* 998 bytes + CRLF = 1000: still a command (an unknown one). */
	size_t o = (size_t)sprintf(in, "LHLO x\r\n");
	memset(in + o, 'A', 998);
	o += 998;
	o += (size_t)sprintf(in + o, "\r\n");
	/* 1001 bytes: too long, but the session goes on. */
	o += (size_t)sprintf(in + o, "NOOP ");
	memset(in + o, 'B', 995);
	o += 995;
	o += (size_t)sprintf(in + o, "\r\nNOOP\r\n");
	in[o] = 0;
	for (size_t chunk = 1; chunk <= 1024; chunk *= 4) {
		struct run r = session(1000, in, chunk, NULL, 0);
		CHECK(has(&r, "500 5.5.1 command not recognised\r\n500 5.5.2 line too long\r\n"
			      "250 2.0.0 OK\r\n"));
		CHECK(!r.closed);
		run_free(&r);
	}
	/* An absurd line: 500 and close, without waiting for its end. */
	o = (size_t)sprintf(in, "LHLO x\r\n");
	memset(in + o, 'C', n - o - 1);
	in[n - 1] = 0;
	for (size_t chunk = 7; chunk <= 70000; chunk *= 10) {
		struct run r = session(1000, in, chunk, NULL, 0);
		CHECK(has(&r, "500 5.5.2 line too long, closing\r\n"));
		CHECK(r.closed);
		CHECK(r.consumed <= 8 + LMTP_LINE_ABSURD + chunk);
		run_free(&r);
	}
	/* A long line inside DATA is message data, not an error. */
	o = (size_t)sprintf(in, "LHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<l@x>\r\nDATA\r\n");
	memset(in + o, 'D', 5000);
	o += 5000;
	o += (size_t)sprintf(in + o, "\r\n.\r\n");
	struct run r = session(100000, in, 333, NULL, 0);
	CHECK_EQ(r.n_msgs, 1);
	CHECK_EQ(r.msg_len[0], 5002);
	run_free(&r);
	free(in);
}

static void test_limits(void)
{
	/* Too many errors: 421 and close. */
	char in[4096];
	size_t o = (size_t)sprintf(in, "LHLO x\r\n");
	for (int i = 0; i < LMTP_MAX_ERRORS + 5; i++)
		o += (size_t)sprintf(in + o, "BAD\r\n");
	struct run r = session(1000, in, 1000, NULL, 0);
	CHECK_EQ(count(&r, "500 "), LMTP_MAX_ERRORS);
	CHECK(has(&r, "421 4.7.0 "));
	CHECK(r.closed);
	run_free(&r);

	/* More than LMTP_MAX_RCPT recipients: 452 for the rest, the rest get
	 * no reply after DATA. */
	char *big = malloc(20000);
	o = (size_t)sprintf(big, "LHLO x\r\nMAIL FROM:<a@x>\r\n");
	for (int i = 0; i < LMTP_MAX_RCPT + 3; i++)
		o += (size_t)sprintf(big + o, "RCPT TO:<r%d@x>\r\n", i);
	sprintf(big + o, "DATA\r\nhi\r\n.\r\n");
	r = session(1000, big, 512, NULL, 0);
	CHECK_EQ(count(&r, "250 2.1.5 recipient OK"), LMTP_MAX_RCPT);
	CHECK_EQ(count(&r, "452 4.5.3"), 3);
	CHECK_EQ(count(&r, "250 2.0.0 <r"), LMTP_MAX_RCPT);
	CHECK(!has(&r, "<r100@x> accepted"));
	run_free(&r);
	free(big);

	/* NUL bytes in a command line. */
	struct lmtp *s = lmtp_new(NULL, 10);
	size_t used;
	CHECK_EQ(lmtp_feed(s, (const uint8_t *)"NO\0OP\r\n", 7, &used), LMTP_MORE);
	CHECK_EQ(used, 7);
	r = (struct run){ 0 };
	take_output(s, &r);
	CHECK(has(&r, "220 localhost "));
	CHECK(has(&r, "500 5.5.2 syntax error\r\n"));
	CHECK(lmtp_rcpt(s, 0) == NULL && lmtp_mail_from(s) == NULL && !lmtp_in_data(s));
	/* No message waits: lmtp_message says so, lmtp_finish does nothing. */
	const uint8_t *m;
	size_t ml;
	CHECK(lmtp_message(s, &m, &ml) < 0);
	lmtp_finish(s, 0, NULL);
	CHECK_EQ(lmtp_feed(s, (const uint8_t *)"QUIT\r\nNOOP\r\n", 12, &used), LMTP_CLOSE);
	CHECK_EQ(used, 6);
	CHECK_EQ(lmtp_feed(s, (const uint8_t *)"NOOP\r\n", 6, &used), LMTP_CLOSE);
	CHECK_EQ(used, 0);
	run_free(&r);
	lmtp_free(s);
}

static void test_envelope(void)
{
	struct lmtp *s = lmtp_new("t", 1000);
	size_t used;
	const char *in = "LHLO x\r\nMAIL FROM: <o@x>\r\nRCPT TO:<a@x>\r\nrcpt to:<b@x>\r\nDATA\r\nab";
	CHECK_EQ(lmtp_feed(s, (const uint8_t *)in, strlen(in), &used), LMTP_MORE);
	CHECK_EQ(used, strlen(in));
	CHECK_STR(lmtp_mail_from(s), "o@x");
	CHECK_EQ(lmtp_rcpt_count(s), 2);
	CHECK_STR(lmtp_rcpt(s, 1), "b@x");
	CHECK(lmtp_in_data(s));
	lmtp_free(s);   /* mid-DATA: frees the partial message */
}

/* CHUNKING: chunks taken verbatim (dots, bare LF and all), any split of the
 * input alike; BDAT 0 LAST; what may not follow BDAT; refused chunks dropped
 * unread; sizes that cannot be read close the session. */
static const char BDAT_BODY1[] = "Message-ID: <c@x>\r\n\r\n.\r\nbare\nlf\r\n";   /* 33 bytes */
static const char BDAT_BODY2[] = "..last line\r\n";                               /* 13 bytes */

static void test_bdat(void)
{
	char in[512];
	snprintf(in, sizeof(in),
		 "LHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<l@x>\r\nRCPT TO:<m@x>\r\n"
		 "BDAT %zu\r\n%sBDAT %zu LAST\r\n%sNOOP\r\nQUIT\r\n",
		 strlen(BDAT_BODY1), BDAT_BODY1, strlen(BDAT_BODY2), BDAT_BODY2);
	char whole[128];
	snprintf(whole, sizeof(whole), "%s%s", BDAT_BODY1, BDAT_BODY2);
	for (size_t chunk = 1; chunk < 60; chunk += 4) {
		struct run r = session(1000, in, chunk, NULL, 0);
		CHECK_EQ(r.n_msgs, 1);
		CHECK(r.n_msgs == 1 && r.msg_len[0] == strlen(whole) &&
		      !memcmp(r.msg[0], whole, strlen(whole)));
		CHECK(has(&r, "250-CHUNKING\r\n"));
		CHECK(has(&r, "250 2.0.0 33 octets received\r\n"));
		CHECK(has(&r, "250 2.0.0 <l@x> accepted as X\r\n250 2.0.0 <m@x> accepted as X\r\n"
			      "250 2.0.0 OK\r\n221 "));
		CHECK(!has(&r, "354"));
		CHECK(r.closed);
		run_free(&r);
	}

	/* BDAT 0 LAST ends the message even as the input's last bytes. */
	struct run r = session(1000, "LHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<l@x>\r\nBDAT 5\r\nabcde"
				     "BDAT 0 LAST\r\n", 1000, NULL, 0);
	CHECK_EQ(r.n_msgs, 1);
	CHECK(r.n_msgs == 1 && r.msg_len[0] == 5 && !memcmp(r.msg[0], "abcde", 5));
	CHECK(has(&r, "250 2.0.0 <l@x> accepted as X\r\n"));
	run_free(&r);

	/* After a BDAT: no RCPT, no DATA; RSET forgets the chunks. */
	r = session(1000, "LHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<l@x>\r\nBDAT 3\r\nabc"
			  "RCPT TO:<m@x>\r\nDATA\r\nRSET\r\n"
			  "MAIL FROM:<a@x>\r\nRCPT TO:<l@x>\r\nBDAT 2 LAST\r\nxyQUIT\r\n", 1000, NULL, 0);
	CHECK(has(&r, "503 5.5.1 RCPT after BDAT\r\n503 5.5.1 DATA after BDAT\r\n250 2.0.0 reset\r\n"));
	CHECK_EQ(r.n_msgs, 1);
	CHECK(r.n_msgs == 1 && r.msg_len[0] == 2 && !memcmp(r.msg[0], "xy", 2));
	run_free(&r);

	/* Refused (no RCPT yet): its bytes are dropped, not run as commands. */
	r = session(1000, "LHLO x\r\nMAIL FROM:<a@x>\r\nBDAT 6 LAST\r\nQUIT\r\nNOOP\r\n", 1000, NULL, 0);
	CHECK(has(&r, "503 5.5.1 need RCPT before BDAT\r\n250 2.0.0 OK\r\n"));
	CHECK(!r.closed);
	CHECK_EQ(r.n_msgs, 0);
	run_free(&r);

	/* Over max_message: read to the end and refused at LAST; the session
	 * goes on. */
	r = session(10, "LHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<l@x>\r\nBDAT 20 LAST\r\n"
			"01234567890123456789NOOP\r\n", 1000, (const int[]){ IL_ETOOLARGE }, 1);
	CHECK_EQ(r.n_msgs, 1);
	CHECK_EQ(r.msg_rc[0], IL_ETOOLARGE);
	CHECK(has(&r, "552 5.3.4 <l@x> "));
	CHECK(has(&r, "250 2.0.0 OK\r\n"));
	run_free(&r);

	/* A size that cannot be read leaves no way to the next command. */
	const char *bad[] = { "BDAT\r\n", "BDAT x\r\n", "BDAT -1\r\n", "BDAT 5 FIRST\r\n",
			      "BDAT 5  LAST\r\n", "BDAT 99999999999999999999999\r\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char b[128];
		snprintf(b, sizeof(b), "LHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<l@x>\r\n%sNOOP\r\n", bad[i]);
		r = session(1000, b, 1000, NULL, 0);
		CHECK(has(&r, "501 5.5.4 syntax: BDAT size [LAST]; closing\r\n"));
		CHECK(!has(&r, "250 2.0.0 OK"));
		CHECK(r.closed);
		run_free(&r);
	}

	/* A chunk under way is a message in transfer: a hang-up loses it. */
	struct lmtp *s = lmtp_new("relay.test", 1000);
	const char *part = "LHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<l@x>\r\nBDAT 5\r\nab";
	size_t used;
	CHECK(s != NULL);
	CHECK_EQ(lmtp_feed(s, (const uint8_t *)part, strlen(part), &used), LMTP_MORE);
	CHECK_EQ(used, strlen(part));
	CHECK(lmtp_in_data(s));
	lmtp_free(s);
}

int main(void)
{
	test_pipelined();
	test_several_messages();
	test_results();
	test_dots();
	test_oversized();
	test_sequences();
	test_long_lines();
	test_limits();
	test_envelope();
	test_bdat();
	return check_done("test_lmtp");
}
