/*
 * lmtp.c — the LMTP protocol (RFC 2033) as a state machine over bytes.
 *
 * Commands are read line by line (LF ends a line; a CR before it is
 * dropped). DATA is read strictly: only CRLF "." CRLF ends it and only a dot
 * right after CRLF is unstuffed, as RFC 5321 4.1.1.4 says, so that a bare LF
 * inside a message can never end it early (the "SMTP smuggling" family of
 * bugs). The message is kept as received otherwise; the relay's intake
 * normalises line ends itself.
 *
 * CHUNKING (RFC 3030, BDAT): the message comes in chunks of a stated size,
 * taken as they are (no dot-stuffing, nothing ends them early). A client
 * that uses it, as Postfix does when offered, sends MAIL, RCPT, BDAT and the
 * message in one go and waits for one round trip instead of two. The bytes
 * of a refused BDAT are read and dropped, so they are never taken for
 * commands; a BDAT whose size cannot be read leaves no way to find the next
 * command, and closes the session.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "il/error.h"
#include "lmtp.h"

/* The message buffer starts this small; an idle session gives back anything
 * larger, so 64 idle sessions do not each sit on a megabyte. */
#define LMTP_MSG_KEEP (64 * 1024)

enum state {
	ST_GREETED,             /* waiting for LHLO */
	ST_READY,               /* after LHLO: MAIL may start a transaction */
	ST_MAIL,                /* after MAIL: RCPT */
	ST_DATA,                /* reading the message */
	ST_BDAT,                /* reading a BDAT chunk (chunk_left bytes to go) */
	ST_MESSAGE,             /* message complete, waiting for lmtp_finish */
	ST_CLOSED,
};

/* Where DATA reading stands, so that any split of the input parses alike. */
enum dstate {
	D_BOL,                  /* at the start of a line (after CRLF, or DATA) */
	D_LINE,                 /* inside a line, last byte not CR */
	D_CR,                   /* inside a line, last byte CR */
	D_DOT,                  /* a line's first byte was "." (dropped) */
	D_DOT_CR,               /* "." CR at the start of a line */
};

struct lmtp {
	enum state state;
	enum dstate dstate;
	int err;                        /* sticky -ENOMEM */
	int errors;                     /* protocol errors so far */
	size_t max_message;
	char name[256];

	char line[LMTP_LINE_MAX + 1];   /* command being read, NUL-terminated */
	size_t line_len;
	size_t overlong;                /* > 0: bytes of a too long line dropped so far */

	char *mail_from;
	char *rcpt[LMTP_MAX_RCPT];
	size_t n_rcpt;

	uint8_t *msg;
	size_t msg_len, msg_cap;
	size_t msg_seen;                /* bytes of the message, kept or not */

	int bdat;                       /* this transaction's message comes by BDAT */
	unsigned long long chunk_left;  /* bytes of the chunk still to read */
	int chunk_last;                 /* the chunk ends the message (BDAT ... LAST) */
	int chunk_drop;                 /* the BDAT was refused: drop the bytes */
	enum state chunk_after;         /* state once a dropped chunk is read */

	/* MAILs refused for their SIZE= since lmtp_take_size_refusals(). */
	size_t size_refused;
	unsigned long long size_refused_last;
	char *size_refused_from;

	uint8_t *out;
	size_t out_len, out_cap;
};

/* ---- output ---- */

static void out_vprintf(struct lmtp *s, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || s->err)
		return;
	if (s->out_cap - s->out_len < (size_t)n + 1) {
		size_t cap = s->out_cap ? s->out_cap : 512;
		while (cap - s->out_len < (size_t)n + 1)
			cap *= 2;
		uint8_t *p = realloc(s->out, cap);
		if (!p) {
			s->err = -ENOMEM;
			return;
		}
		s->out = p;
		s->out_cap = cap;
	}
	vsnprintf((char *)s->out + s->out_len, (size_t)n + 1, fmt, ap);
	s->out_len += (size_t)n;
}

static void reply(struct lmtp *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct lmtp *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	out_vprintf(s, fmt, ap);
	va_end(ap);
}

/* A refused command; a client that keeps erring is not an MTA we serve. */
static void fail(struct lmtp *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct lmtp *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	out_vprintf(s, fmt, ap);
	va_end(ap);
	if (++s->errors >= LMTP_MAX_ERRORS && s->state != ST_CLOSED) {
		reply(s, "421 4.7.0 %s too many errors, closing\r\n", s->name);
		s->state = ST_CLOSED;
	}
}

uint8_t *lmtp_take_output(struct lmtp *s, size_t *len)
{
	uint8_t *p = s->out;
	*len = s->out_len;
	if (!s->out_len)
		return NULL;
	s->out = NULL;
	s->out_len = s->out_cap = 0;
	return p;
}

/* ---- session ---- */

struct lmtp *lmtp_new(const char *name, size_t max_message)
{
	struct lmtp *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	snprintf(s->name, sizeof(s->name), "%s", name && *name ? name : "localhost");
	s->max_message = max_message;
	reply(s, "220 %s LMTP interlist ready\r\n", s->name);
	if (s->err) {
		lmtp_free(s);
		return NULL;
	}
	return s;
}

/* Forget the transaction (RSET, LHLO, after a message). */
static void reset(struct lmtp *s)
{
	free(s->mail_from);
	s->mail_from = NULL;
	for (size_t i = 0; i < s->n_rcpt; i++)
		free(s->rcpt[i]);
	s->n_rcpt = 0;
	s->msg_len = s->msg_seen = 0;
	s->bdat = 0;
	if (s->msg_cap > LMTP_MSG_KEEP) {
		free(s->msg);
		s->msg = NULL;
		s->msg_cap = 0;
	}
}

void lmtp_free(struct lmtp *s)
{
	if (!s)
		return;
	reset(s);
	free(s->msg);
	free(s->out);
	free(s->size_refused_from);
	free(s);
}

size_t lmtp_take_size_refusals(struct lmtp *s, unsigned long long *declared, const char **from)
{
	size_t n = s->size_refused;
	if (declared)
		*declared = s->size_refused_last;
	if (from)
		*from = s->size_refused_from ? s->size_refused_from : "";
	s->size_refused = 0;
	return n;
}

size_t lmtp_rcpt_count(const struct lmtp *s)
{
	return s->n_rcpt;
}

const char *lmtp_rcpt(const struct lmtp *s, size_t i)
{
	return i < s->n_rcpt ? s->rcpt[i] : NULL;
}

const char *lmtp_mail_from(const struct lmtp *s)
{
	return s->mail_from;
}

int lmtp_in_data(const struct lmtp *s)
{
	return s->state == ST_DATA || s->state == ST_BDAT || (s->state == ST_MAIL && s->bdat);
}

/* ---- commands ---- */

/* Does line start with word (any case) followed by end or delim? */
static const char *word(const char *line, const char *w, char delim)
{
	size_t n = strlen(w);
	if (strncasecmp(line, w, n) != 0)
		return NULL;
	if (line[n] == 0)
		return line + n;
	if (delim && line[n] == delim)
		return line + n + 1;
	return NULL;
}

/* "<path>" then optional " KEY=VALUE" words; *addr becomes a malloc'd copy
 * of path. -EINVAL for bad syntax, -ENOMEM. *params points after '>'. */
static int parse_path(const char *arg, char **addr, const char **params)
{
	while (*arg == ' ')             /* RFC 5321 has none; many clients send one */
		arg++;
	if (*arg != '<')
		return -EINVAL;
	const char *end = strchr(arg + 1, '>');
	if (!end)
		return -EINVAL;
	size_t n = (size_t)(end - arg - 1);
	if (end[1] && end[1] != ' ')
		return -EINVAL;
	/* The address is echoed in replies and logs: no control bytes. */
	for (const char *c = arg + 1; c < end; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return -EINVAL;
	if (!(*addr = strndup(arg + 1, n)))
		return -ENOMEM;
	*params = end + 1;
	return 0;
}

static void cmd_lhlo(struct lmtp *s, const char *arg)
{
	if (!arg || !*arg) {
		fail(s, "501 5.5.4 LHLO needs a domain\r\n");
		return;
	}
	reset(s);
	s->state = ST_READY;
	reply(s, "250-%s\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
		 "250-CHUNKING\r\n250 SIZE %zu\r\n", s->name, s->max_message);
}

static void cmd_mail(struct lmtp *s, const char *arg)
{
	const char *p, *params;
	char *addr = NULL;
	if (s->state == ST_GREETED) {
		fail(s, "503 5.5.1 send LHLO first\r\n");
		return;
	}
	if (s->state != ST_READY) {
		fail(s, "503 5.5.1 nested MAIL command\r\n");
		return;
	}
	if (!arg || !(p = word(arg, "FROM", ':'))) {
		fail(s, "501 5.5.4 syntax: MAIL FROM:<address>\r\n");
		return;
	}
	int e = parse_path(p, &addr, &params);
	if (e == -ENOMEM) {
		s->err = e;
		return;
	}
	if (e < 0) {
		fail(s, "501 5.1.7 bad sender address syntax\r\n");
		return;
	}
	/* We advertise SIZE and 8BITMIME: those are the parameters a client may
	 * send (RFC 5321 4.1.1.11: others are 555). */
	char *save = NULL, *dup = strdup(params);
	if (!dup) {
		free(addr);
		s->err = -ENOMEM;
		return;
	}
	for (char *t = strtok_r(dup, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		const char *v;
		if ((v = word(t, "SIZE", '='))) {
			char *end;
			errno = 0;
			unsigned long long n = strtoull(v, &end, 10);
			if (!*v || *end || *v == '-' || errno) {
				fail(s, "501 5.5.4 bad SIZE parameter\r\n");
				goto out;
			}
			if (n > s->max_message) {
				/* A refusal of the post, not a protocol error: it
				 * does not count towards LMTP_MAX_ERRORS. */
				reply(s, "552 5.3.4 message size exceeds fixed limit of %zu bytes\r\n",
				      s->max_message);
				s->size_refused++;
				s->size_refused_last = n;
				free(s->size_refused_from);
				s->size_refused_from = addr;
				addr = NULL;
				goto out;
			}
		} else if ((v = word(t, "BODY", '='))) {
			if (strcasecmp(v, "7BIT") && strcasecmp(v, "8BITMIME")) {
				fail(s, "501 5.5.4 unknown BODY type\r\n");
				goto out;
			}
		} else {
			fail(s, "555 5.5.4 unsupported MAIL parameter\r\n");
			goto out;
		}
	}
	s->mail_from = addr;
	addr = NULL;
	s->state = ST_MAIL;
	reply(s, "250 2.1.0 sender OK\r\n");
out:
	free(dup);
	free(addr);
}

static void cmd_rcpt(struct lmtp *s, const char *arg)
{
	const char *p, *params;
	char *addr = NULL;
	if (s->state != ST_MAIL) {
		fail(s, "503 5.5.1 need MAIL before RCPT\r\n");
		return;
	}
	if (s->bdat) {
		fail(s, "503 5.5.1 RCPT after BDAT\r\n");
		return;
	}
	if (!arg || !(p = word(arg, "TO", ':'))) {
		fail(s, "501 5.5.4 syntax: RCPT TO:<address>\r\n");
		return;
	}
	int e = parse_path(p, &addr, &params);
	if (e == -ENOMEM) {
		s->err = e;
		return;
	}
	if (e < 0 || !*addr) {
		fail(s, "501 5.1.3 bad recipient address syntax\r\n");
		goto out;
	}
	if (*params) {
		fail(s, "555 5.5.4 unsupported RCPT parameter\r\n");
		goto out;
	}
	if (s->n_rcpt == LMTP_MAX_RCPT) {
		/* 452: the client sends these recipients in a later transaction. */
		reply(s, "452 4.5.3 too many recipients\r\n");
		goto out;
	}
	/* Every address the MTA routes to this listener is the list: the
	 * listener belongs to one list. */
	s->rcpt[s->n_rcpt++] = addr;
	addr = NULL;
	reply(s, "250 2.1.5 recipient OK\r\n");
out:
	free(addr);
}

static void cmd_data(struct lmtp *s, const char *arg)
{
	if (s->state != ST_MAIL) {
		fail(s, "503 5.5.1 need MAIL before DATA\r\n");
		return;
	}
	if (!s->n_rcpt) {
		fail(s, "503 5.5.1 need RCPT before DATA\r\n");
		return;
	}
	if (s->bdat) {
		fail(s, "503 5.5.1 DATA after BDAT\r\n");
		return;
	}
	if (arg && *arg) {
		fail(s, "501 5.5.4 DATA takes no argument\r\n");
		return;
	}
	s->state = ST_DATA;
	s->dstate = D_BOL;
	s->msg_len = s->msg_seen = 0;
	reply(s, "354 go ahead, end with <CRLF>.<CRLF>\r\n");
}

/* "BDAT size [LAST]". A refused one still has its chunk to be read. */
static void cmd_bdat(struct lmtp *s, const char *arg)
{
	char *end = NULL;
	const char *why = NULL;
	unsigned long long n = 0;
	errno = 0;
	if (arg && *arg >= '0' && *arg <= '9')
		n = strtoull(arg, &end, 10);
	if (!arg || *arg < '0' || *arg > '9' || errno || (*end && *end != ' ') ||
	    (*end == ' ' && strcasecmp(end + 1, "LAST") != 0)) {
		reply(s, "501 5.5.4 syntax: BDAT size [LAST]; closing\r\n");
		s->state = ST_CLOSED;
		return;
	}
	if (s->state != ST_MAIL)
		why = "503 5.5.1 need MAIL before BDAT\r\n";
	else if (!s->n_rcpt)
		why = "503 5.5.1 need RCPT before BDAT\r\n";
	s->chunk_left = n;
	s->chunk_last = *end == ' ';
	s->chunk_drop = why != NULL;
	s->chunk_after = s->state;
	if (why) {
		fail(s, "%s", why);
		if (s->state == ST_CLOSED)
			return;         /* too many errors: no bytes will be read */
	} else if (!s->bdat) {
		s->bdat = 1;
		s->msg_len = s->msg_seen = 0;
	}
	s->state = ST_BDAT;
}

static void command(struct lmtp *s)
{
	char *line = s->line;
	size_t len = s->line_len;
	s->line_len = 0;
	if (len && line[len - 1] == '\r')
		len--;
	line[len] = 0;
	if (memchr(line, 0, len) || !len) {
		fail(s, "500 5.5.2 syntax error\r\n");
		return;
	}
	char *arg = strchr(line, ' ');
	if (arg)
		*arg++ = 0;
	if (!strcasecmp(line, "LHLO")) {
		cmd_lhlo(s, arg);
	} else if (!strcasecmp(line, "MAIL")) {
		cmd_mail(s, arg);
	} else if (!strcasecmp(line, "RCPT")) {
		cmd_rcpt(s, arg);
	} else if (!strcasecmp(line, "DATA")) {
		cmd_data(s, arg);
	} else if (!strcasecmp(line, "BDAT")) {
		cmd_bdat(s, arg);
	} else if (!strcasecmp(line, "RSET")) {
		reset(s);
		if (s->state != ST_GREETED)
			s->state = ST_READY;
		reply(s, "250 2.0.0 reset\r\n");
	} else if (!strcasecmp(line, "NOOP")) {
		reply(s, "250 2.0.0 OK\r\n");
	} else if (!strcasecmp(line, "QUIT")) {
		reply(s, "221 2.0.0 %s closing\r\n", s->name);
		s->state = ST_CLOSED;
	} else if (!strcasecmp(line, "HELO") || !strcasecmp(line, "EHLO")) {
		/* RFC 2033 4.1: a server must not answer these as if it spoke SMTP. */
		fail(s, "500 5.5.1 this is LMTP: use LHLO\r\n");
	} else {
		fail(s, "500 5.5.1 command not recognised\r\n");
	}
}

/* Bytes of a command line, up to (not including) its LF. */
static void line_put(struct lmtp *s, const uint8_t *p, size_t n)
{
	if (s->overlong) {
		s->overlong += n;
		return;
	}
	/* The whole line, LF included, must fit LMTP_LINE_MAX. */
	if (s->line_len + n > LMTP_LINE_MAX - 1) {
		s->overlong = s->line_len + n;
		s->line_len = 0;
		return;
	}
	memcpy(s->line + s->line_len, p, n);
	s->line_len += n;
}

/* ---- DATA ---- */

static void msg_put(struct lmtp *s, const uint8_t *p, size_t n)
{
	if (!n)
		return;
	s->msg_seen = s->msg_seen + n < s->msg_seen ? SIZE_MAX : s->msg_seen + n;
	if (s->msg_seen > s->max_message)
		return;         /* too large: the rest is read and dropped */
	if (s->msg_cap - s->msg_len < n) {
		size_t cap = s->msg_cap ? s->msg_cap : 16384;
		while (cap - s->msg_len < n)
			cap *= 2;
		if (cap > s->max_message)
			cap = s->max_message;
		uint8_t *m = realloc(s->msg, cap ? cap : 1);
		if (!m) {
			s->err = -ENOMEM;
			return;
		}
		s->msg = m;
		s->msg_cap = cap;
	}
	memcpy(s->msg + s->msg_len, p, n);
	s->msg_len += n;
}

/* Message bytes from in[0..len); returns how many were taken (up to the end
 * of DATA, when the state becomes ST_MESSAGE). */
static size_t data_bytes(struct lmtp *s, const uint8_t *in, size_t len)
{
	static const uint8_t cr = '\r';
	size_t i = 0;
	while (i < len && !s->err) {
		uint8_t c = in[i];
		switch (s->dstate) {
		case D_BOL:
			if (c == '.') {
				s->dstate = D_DOT;
				i++;
			} else {
				s->dstate = D_LINE;
			}
			break;
		case D_LINE: {
			/* Fast path: copy up to and including the next CR. */
			const uint8_t *p = memchr(in + i, '\r', len - i);
			size_t n = p ? (size_t)(p - (in + i)) + 1 : len - i;
			msg_put(s, in + i, n);
			i += n;
			if (p)
				s->dstate = D_CR;
			break;
		}
		case D_CR:
			msg_put(s, &c, 1);
			i++;
			s->dstate = c == '\n' ? D_BOL : c == '\r' ? D_CR : D_LINE;
			break;
		case D_DOT:
			if (c == '\r') {
				s->dstate = D_DOT_CR;
				i++;
			} else {
				s->dstate = D_LINE;     /* the dot was stuffing: dropped */
			}
			break;
		case D_DOT_CR:
			if (c == '\n') {
				s->state = ST_MESSAGE;
				return i + 1;
			}
			/* "." CR then something else: the CR is data. */
			msg_put(s, &cr, 1);
			s->dstate = D_CR;
			break;
		}
	}
	return i;
}

/* Chunk bytes from in[0..len) (none past the chunk's end); the chunk's
 * answer once it is complete. */
static size_t chunk_bytes(struct lmtp *s, const uint8_t *in, size_t len)
{
	size_t n = s->chunk_left < len ? (size_t)s->chunk_left : len;
	if (!s->chunk_drop)
		msg_put(s, in, n);
	s->chunk_left -= n;
	if (s->chunk_left > 0 || s->err)
		return n;
	if (s->chunk_drop)
		s->state = s->chunk_after;      /* refused already */
	else if (s->chunk_last)
		s->state = ST_MESSAGE;          /* lmtp_finish answers per recipient */
	else {
		s->state = ST_MAIL;
		reply(s, "250 2.0.0 %zu octets received\r\n", s->msg_seen);
	}
	return n;
}

int lmtp_feed(struct lmtp *s, const uint8_t *in, size_t len, size_t *used)
{
	size_t i = 0;
	*used = 0;
	while (!s->err) {
		if (s->state == ST_MESSAGE)
			break;
		if (s->state == ST_CLOSED)
			break;
		/* Before the end-of-input check: "BDAT 0 LAST" needs no bytes. */
		if (s->state == ST_BDAT && (i < len || s->chunk_left == 0)) {
			i += chunk_bytes(s, in + i, len - i);
			continue;
		}
		if (i == len)
			break;
		if (s->state == ST_DATA) {
			i += data_bytes(s, in + i, len - i);
			continue;
		}
		const uint8_t *nl = memchr(in + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (in + i)) : len - i;
		line_put(s, in + i, n);
		i += n;
		if (s->overlong > LMTP_LINE_ABSURD) {
			reply(s, "500 5.5.2 line too long, closing\r\n");
			s->state = ST_CLOSED;
			break;
		}
		if (!nl)
			break;
		i++;
		if (s->overlong) {
			s->overlong = 0;
			fail(s, "500 5.5.2 line too long\r\n");
			continue;
		}
		command(s);
	}
	*used = i;
	if (s->err)
		return s->err;
	if (s->state == ST_MESSAGE)
		return LMTP_MESSAGE;
	if (s->state == ST_CLOSED)
		return LMTP_CLOSE;
	return LMTP_MORE;
}

int lmtp_message(const struct lmtp *s, const uint8_t **msg, size_t *len)
{
	if (s->state != ST_MESSAGE) {
		*msg = NULL;
		*len = 0;
		return -EINVAL;
	}
	if (s->msg_seen > s->max_message) {
		*msg = NULL;
		*len = s->msg_seen;
		return IL_ETOOLARGE;
	}
	*msg = s->msg ? s->msg : (const uint8_t *)"";
	*len = s->msg_len;
	return 0;
}

void lmtp_finish(struct lmtp *s, int result, const char *detail)
{
	const char *code, *text;
	if (s->state != ST_MESSAGE)
		return;
	switch (result) {
	case 0:
		code = "250 2.0.0";
		text = "accepted";
		break;
	case IL_ETOOLARGE:
		code = "552 5.3.4";
		text = "message too big for this list";
		break;
	case IL_ENOTMAIL:
		code = "550 5.6.0";
		text = "not an RFC 5322 message";
		break;
	case IL_ENOMSGID:
		code = "550 5.6.0";
		text = "message has no Message-ID";
		break;
	default:
		code = "451 4.3.0";
		text = "cannot store the message now, try again later";
		break;
	}
	/* RFC 2033 4.2: one reply per recipient accepted, in RCPT order. */
	for (size_t i = 0; i < s->n_rcpt; i++)
		reply(s, "%s <%s> %s%s%s\r\n", code, s->rcpt[i], text, detail ? " " : "",
		      detail ? detail : "");
	reset(s);
	s->state = ST_READY;
}
