/*
 * fuzz_lmtp.c — the LMTP state machine (relay/lmtp.c) on arbitrary bytes
 * fed in arbitrary chunk sizes.
 *
 * Input: byte 0-1 the message size limit, byte 2 the seed of the chunk
 * sizes, byte 3 bit 0 starts with a canned LHLO/MAIL/RCPT/DATA so that the
 * fuzzer reaches DATA at once, bits 1-2 pick the answer given to messages.
 * The rest is the client's stream.
 *
 * Besides the sanitizers, checks what the server relies on: the same bytes
 * split differently give the same replies and the same messages; LMTP_MORE
 * takes everything; a message is never over the limit; every reply line is
 * "DDD" + (space or dash) ... CRLF; one reply per recipient after a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "il/error.h"
#include "relay/lmtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

struct acc {
	uint8_t *p;
	size_t len, cap;
};

static void acc_put(struct acc *a, const void *p, size_t n)
{
	if (a->cap - a->len < n) {
		size_t cap = a->cap ? a->cap : 1024;
		while (cap - a->len < n)
			cap *= 2;
		a->p = realloc(a->p, cap);
		if (!a->p)
			abort();
		a->cap = cap;
	}
	if (n)
		memcpy(a->p + a->len, p, n);
	a->len += n;
}

static void take(struct lmtp *s, struct acc *out)
{
	size_t n;
	uint8_t *o = lmtp_take_output(s, &n);
	if (!o)
		return;
	acc_put(out, o, n);
	free(o);
}

/* Every line of the output is a well-formed reply. */
static void check_replies(const struct acc *out)
{
	size_t i = 0;
	while (i < out->len) {
		const uint8_t *nl = memchr(out->p + i, '\n', out->len - i);
		if (!nl)
			abort();
		size_t l = (size_t)(nl - (out->p + i));
		const uint8_t *p = out->p + i;
		if (l < 5 || p[l - 1] != '\r' || p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '9' ||
		    p[2] < '0' || p[2] > '9' || (p[3] != ' ' && p[3] != '-'))
			abort();
		if (memchr(p, '\r', l - 1))
			abort();       /* nothing echoed may break a reply line */
		i += l + 1;
	}
}

static const int results[4] = { 0, IL_ENOTMAIL, IL_EFULL, IL_ETOOLARGE };

/* One session over in[0..len); chunk sizes from seed (0: all at once). */
static void session(const uint8_t *in, size_t len, size_t max, unsigned seed, int result,
		    struct acc *out, struct acc *msgs)
{
	struct lmtp *s = lmtp_new("fuzz", max);
	if (!s)
		abort();
	size_t off = 0;
	uint32_t x = seed * 2654435761u + 1;
	int closed = 0;
	while (off < len && !closed) {
		size_t n = len - off;
		if (seed) {
			x = x * 1103515245u + 12345u;
			size_t c = 1 + (x >> 16) % 97;
			if (c < n)
				n = c;
		}
		size_t p = 0;
		for (;;) {
			size_t used = 0;
			int ev = lmtp_feed(s, in + off + p, n - p, &used);
			if (ev < 0 || used > n - p)
				abort();
			p += used;
			const char *from;
			if (lmtp_take_size_refusals(s, NULL, &from) && !from)
				abort();
			if (ev == LMTP_MESSAGE) {
				const uint8_t *m;
				size_t ml;
				size_t before = 0, after = 0;
				int rc = lmtp_message(s, &m, &ml);
				if (rc == 0 && ml > max)
					abort();
				if (rc != 0 && (rc != IL_ETOOLARGE || ml <= max))
					abort();
				size_t nr = lmtp_rcpt_count(s);
				if (nr == 0 || nr > LMTP_MAX_RCPT || !lmtp_mail_from(s))
					abort();
				uint8_t tag = rc == 0 ? 'M' : 'T';
				acc_put(msgs, &tag, 1);
				acc_put(msgs, &ml, sizeof(ml));
				if (rc == 0)
					acc_put(msgs, m, ml);
				take(s, out);
				before = out->len;
				lmtp_finish(s, rc ? rc : result, "x");
				take(s, out);
				after = out->len;
				size_t lines = 0;
				for (size_t i = before; i < after; i++)
					lines += out->p[i] == '\n';
				if (lines != nr)
					abort();
				continue;
			}
			if (ev == LMTP_CLOSE) {
				closed = 1;
				break;
			}
			if (p != n)
				abort();
			break;
		}
		off += n;
		take(s, out);
	}
	take(s, out);
	lmtp_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static const char pre[] = "LHLO f\r\nMAIL FROM:<a@b>\r\nRCPT TO:<l@x>\r\nDATA\r\n";
	if (n < 4)
		return 0;
	size_t max = (size_t)(d[0] | d[1] << 8);
	unsigned seed = d[2] ? d[2] : 1;
	int result = results[(d[3] >> 1) & 3];
	struct acc in = { 0 }, out1 = { 0 }, out2 = { 0 }, m1 = { 0 }, m2 = { 0 };
	if (d[3] & 1)
		acc_put(&in, pre, sizeof(pre) - 1);
	acc_put(&in, d + 4, n - 4);

	session(in.p, in.len, max, 0, result, &out1, &m1);
	session(in.p, in.len, max, seed, result, &out2, &m2);
	if (out1.len != out2.len || (out1.len && memcmp(out1.p, out2.p, out1.len)) ||
	    m1.len != m2.len || (m1.len && memcmp(m1.p, m2.p, m1.len)))
		abort();
	check_replies(&out1);

	free(in.p);
	free(out1.p);
	free(out2.p);
	free(m1.p);
	free(m2.p);
	return 0;
}
