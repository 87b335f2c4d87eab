/*
 * mailhdr.c — the header block of an RFC 5322 message: the few fields the
 * relay acts on (mailhdr_parse) and the form that is signed and stored
 * (mailhdr_prepare).
 *
 * The input is untrusted and not NUL-terminated: every scan is bounded by
 * len. Both functions walk the header with the same field reader, so anything
 * prepare accepts, parse accepts too. Each byte of the header is looked at a
 * constant number of times (one memchr per line, values copied only for the
 * fields we keep), so a huge header costs linear time.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "il/error.h"
#include "il/mailhdr.h"
#include "il/util.h"

/* "X-Interlist-" is the prefix of every header the relay writes itself. */
#define RELAY_PREFIX "x-interlist-"
#define RELAY_PREFIX_LEN (sizeof(RELAY_PREFIX) - 1)

/*
 * Line ends: LF, with any run of CRs right before it. Taking the whole run
 * (not just one CR) keeps CRLF out of the prepared form ("\r\r\n" would leave
 * "\r\n"), makes prepare idempotent, and lets parse read the same values
 * from a message and from its prepared form. Any other CR is data.
 */

/* One line: content ends at end (before the line end); the next line starts
 * at next. */
struct hdr_line {
	size_t end;
	size_t next;
};

/* One header field: its name is msg[start, start + name_len), its raw value
 * (after the colon, folds and line ends still in it) msg[val, end); the next
 * field or the separator line starts at next. */
struct hdr_field {
	size_t start;
	size_t name_len;
	size_t val;
	size_t end;
	size_t next;
};

static int is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/*
 * The line starting at p. IL_ENOTMAIL if no LF ends it before len: in the
 * header block an unterminated line means the separator is missing. A NUL is
 * refused here too, so every header byte is checked exactly once.
 */
static int hdr_line(const uint8_t *m, size_t len, size_t p, struct hdr_line *ln)
{
	const uint8_t *lf = p < len ? memchr(m + p, '\n', len - p) : NULL;
	if (!lf)
		return IL_ENOTMAIL;
	size_t e = (size_t)(lf - m);
	if (memchr(m + p, '\0', e - p))
		return IL_ENOTMAIL;
	ln->next = e + 1;
	while (e > p && m[e - 1] == '\r')
		e--;
	ln->end = e;
	return 0;
}

/*
 * Read the field at *pos with its continuation lines. Returns 1 and fills f,
 * 0 at the blank separator line (then *pos is where the body starts), or
 * IL_ENOTMAIL.
 */
static int hdr_next(const uint8_t *m, size_t len, size_t *pos, struct hdr_field *f)
{
	struct hdr_line ln;
	size_t p = *pos;
	int rc = hdr_line(m, len, p, &ln);
	if (rc < 0)
		return rc;
	if (ln.end == p) {
		*pos = ln.next;
		return 0;
	}
	/* Continuations are consumed with their field below, so one seen here
	 * is the first line of the message: it continues nothing. */
	if (is_wsp(m[p]))
		return IL_ENOTMAIL;
	const uint8_t *colon = memchr(m + p, ':', ln.end - p);
	if (!colon || colon == m + p)
		return IL_ENOTMAIL;
	f->start = p;
	f->name_len = (size_t)(colon - (m + p));
	/* RFC 5322 ftext: printable US-ASCII except ':' (which cannot occur
	 * before the first colon). No obs-syntax space before the colon. */
	for (size_t i = 0; i < f->name_len; i++) {
		if (m[p + i] < 33 || m[p + i] > 126)
			return IL_ENOTMAIL;
	}
	f->val = p + f->name_len + 1;
	f->end = ln.end;
	p = ln.next;
	while (p < len && is_wsp(m[p])) {
		rc = hdr_line(m, len, p, &ln);
		if (rc < 0)
			return rc;
		f->end = ln.end;
		p = ln.next;
	}
	f->next = p;
	*pos = p;
	return 1;
}

/* name is lower case. */
static int name_is(const uint8_t *m, const struct hdr_field *f, const char *name)
{
	size_t n = strlen(name);
	return f->name_len == n && strncasecmp((const char *)m + f->start, name, n) == 0;
}

/* The unfolded value, WSP-trimmed, as a malloc'd C string (NULL: no memory).
 * Unfolding (RFC 5322 2.2.3) drops the line breaks and keeps the WSP after
 * them. The header holds no NUL, so the string is whole. */
static char *hdr_value(const uint8_t *m, const struct hdr_field *f, size_t *out_len)
{
	size_t a = f->val, b = f->end, n = 0, lo = 0;
	char *s = malloc(b - a + 1);
	if (!s)
		return NULL;
	for (size_t i = a; i < b; i++) {
		/* Every LF inside the value ends a line; CRs belong to the
		 * line end only when an LF follows them. */
		if (m[i] == '\r') {
			size_t j = i;
			while (j < b && m[j] == '\r')
				j++;
			if (j < b && m[j] == '\n') {
				i = j;
				continue;
			}
			memcpy(s + n, m + i, j - i);
			n += j - i;
			i = j - 1;
			continue;
		}
		if (m[i] != '\n')
			s[n++] = (char)m[i];
	}
	while (lo < n && is_wsp((unsigned char)s[lo]))
		lo++;
	while (n > lo && is_wsp((unsigned char)s[n - 1]))
		n--;
	memmove(s, s + lo, n - lo);
	s[n - lo] = '\0';
	if (out_len)
		*out_len = n - lo;
	return s;
}

static int hex_val(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Base64 of an encoded word. Padding may be missing (common in the wild) but
 * what is there must be right; 4n+1 characters cannot come from any bytes. */
static int b64_decode(const unsigned char *t, size_t n, uint8_t *out, size_t *olen)
{
	size_t pad = 0, o = 0;
	uint32_t acc = 0;
	int bits = 0;

	while (n > 0 && t[n - 1] == '=' && pad < 2) {
		n--;
		pad++;
	}
	if (n % 4 == 1 || (pad && (n + pad) % 4 != 0))
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = b64_val(t[i]);
		if (v < 0)
			return -1;
		acc = ((acc << 6) | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	*olen = o;
	return 0;
}

/* RFC 2047 4.2 "Q": '_' is a space, =XX a byte, other characters themselves. */
static int q_decode(const unsigned char *t, size_t n, uint8_t *out, size_t *olen)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (t[i] == '_') {
			out[o++] = ' ';
		} else if (t[i] == '=') {
			if (n - i < 3 || hex_val(t[i + 1]) < 0 || hex_val(t[i + 2]) < 0)
				return -1;
			out[o++] = (uint8_t)(hex_val(t[i + 1]) << 4 | hex_val(t[i + 2]));
			i += 2;
		} else {
			out[o++] = t[i];
		}
	}
	*olen = o;
	return 0;
}

static int charset_is_latin1(const unsigned char *cs, size_t n)
{
	static const char *const names[] = {
		"iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i]) == n && strncasecmp((const char *)cs, names[i], n) == 0)
			return 1;
	}
	return 0;
}

/* ISO-8859-1 to UTF-8 in place: each byte >= 0x80 becomes two. The caller
 * leaves room for n more bytes after buf[n). */
static size_t latin1_to_utf8(uint8_t *buf, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += buf[i] >= 0x80;
	size_t j = n + k;
	for (size_t i = n; i > 0; i--) {
		uint8_t c = buf[i - 1];
		if (c < 0x80) {
			buf[--j] = c;
		} else {
			buf[--j] = (uint8_t)(0x80 | (c & 0x3f));
			buf[--j] = (uint8_t)(0xc0 | (c >> 6));
		}
	}
	return n + k;
}

/* An encoded-word character: printable ASCII except '?' (RFC 2047 2; we do not
 * refuse the especials in a charset, real mailers write odd ones). */
static int is_ew_char(unsigned char c)
{
	return c >= 33 && c <= 126 && c != '?';
}

/*
 * Decode the encoded word =?charset[*lang]?B|Q?text?= at s (s[0..1] is "=?")
 * into out. Returns 0 with *used input bytes and *olen output bytes, or -1 if
 * it is not a well-formed word (the caller keeps it as written). out needs
 * room for twice the word's length (Latin-1 doubles at most).
 *
 * Every scan stops at the next '?', so a run of broken words is still read in
 * linear time.
 */
static int ew_decode(const unsigned char *s, size_t n, size_t *used, uint8_t *out, size_t *olen)
{
	size_t i = 2, cs_len, t, dl;
	int rc;

	while (i < n && is_ew_char(s[i]))
		i++;
	if (i == 2 || n - i < 3 || s[i] != '?' || s[i + 2] != '?')
		return -1;
	/* RFC 2231 5: a language after '*' is not part of the charset. */
	const unsigned char *star = memchr(s + 2, '*', i - 2);
	cs_len = star ? (size_t)(star - (s + 2)) : i - 2;
	unsigned char enc = s[i + 1];
	t = i + 3;
	for (i = t; i < n && is_ew_char(s[i]);)
		i++;
	if (i == t || n - i < 2 || s[i] != '?' || s[i + 1] != '=')
		return -1;
	if (enc == 'B' || enc == 'b')
		rc = b64_decode(s + t, i - t, out, &dl);
	else if (enc == 'Q' || enc == 'q')
		rc = q_decode(s + t, i - t, out, &dl);
	else
		return -1;
	if (rc < 0)
		return -1;
	/* The Subject must stay one C string: a word hiding NUL, CR or LF is
	 * left encoded rather than let through to logs and later headers. */
	if (memchr(out, '\0', dl) || memchr(out, '\r', dl) || memchr(out, '\n', dl))
		return -1;
	/* utf-8 and us-ascii pass through; so do charsets we cannot convert
	 * without iconv: their bytes are kept, as the spec of the module says. */
	if (charset_is_latin1(s + 2, cs_len))
		dl = latin1_to_utf8(out, dl);
	*used = i + 2;
	*olen = dl;
	return 0;
}

/*
 * RFC 2047 decoding of an unstructured value. Whitespace between two encoded
 * words is dropped (RFC 2047 6.2), elsewhere kept. Words are decoded even
 * when glued to text, as MUAs display them. Returns a malloc'd string or NULL
 * (no memory).
 */
static char *rfc2047_decode(const char *in, size_t n)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, o = 0, ws_mark = 0;
	int after_ew = 0;

	/* Output never exceeds twice the input consumed so far: a word yields
	 * fewer bytes than it is long, and Latin-1 at most doubles them. */
	if (n > (SIZE_MAX - 1) / 2)
		return NULL;
	uint8_t *out = malloc(2 * n + 1);
	if (!out)
		return NULL;
	while (i < n) {
		size_t used, dl;
		if (s[i] == '=' && n - i > 1 && s[i + 1] == '?' &&
		    ew_decode(s + i, n - i, &used, out + o, &dl) == 0) {
			if (after_ew) {
				memmove(out + ws_mark, out + o, dl);
				o = ws_mark;
			}
			o += dl;
			i += used;
			after_ew = 1;
			ws_mark = o;
		} else {
			if (!is_wsp(s[i]))
				after_ew = 0;
			out[o++] = s[i++];
		}
	}
	out[o] = '\0';
	return (char *)out;
}

static void tlp_mark(struct il_mailinfo *info, const char *level, size_t len)
{
	enum il_tlp t;
	/* Fail closed: a marking we cannot read is the strictest one. */
	if (tlp_parse(level, len, &t) < 0) {
		t = IL_TLP_RED;
		info->tlp_unknown = 1;
	}
	if (!info->tlp_found || t > info->tlp)
		info->tlp = t;
	info->tlp_found = 1;
}

/* Every "[TLP:level]" tag in a decoded Subject, spaces allowed around the
 * name, the colon and the level. A level ends at ']'; a '[' before it means
 * this was no tag, and the next search starts at that '[', so a Subject full
 * of "[TLP:" is still read in linear time. */
static void tlp_from_subject(const char *s, size_t n, struct il_mailinfo *info)
{
	size_t i = 0;
	while (i < n) {
		const char *br = memchr(s + i, '[', n - i);
		if (!br)
			return;
		size_t p = (size_t)(br - s) + 1;
		i = p;
		while (p < n && is_wsp((unsigned char)s[p]))
			p++;
		if (n - p < 3 || strncasecmp(s + p, "tlp", 3) != 0)
			continue;
		p += 3;
		while (p < n && is_wsp((unsigned char)s[p]))
			p++;
		if (p >= n || s[p] != ':')
			continue;
		p++;
		size_t a = p;
		while (p < n && s[p] != ']' && s[p] != '[')
			p++;
		if (p >= n || s[p] != ']')
			continue;
		size_t b = p;
		while (a < b && is_wsp((unsigned char)s[a]))
			a++;
		while (b > a && is_wsp((unsigned char)s[b - 1]))
			b--;
		tlp_mark(info, s + a, b - a);
		i = p + 1;
	}
}

static int parse_interlist_id(const char *v, size_t n, uint8_t id[IL_SHA256_LEN])
{
	if (n != 2 * IL_SHA256_LEN)
		return -1;
	for (size_t i = 0; i < IL_SHA256_LEN; i++) {
		int hi = hex_val((unsigned char)v[2 * i]), lo = hex_val((unsigned char)v[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		id[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int mailhdr_parse(const uint8_t *msg, size_t len, size_t max_bytes, struct il_mailinfo *info)
{
	struct hdr_field f;
	size_t pos = 0, vlen;
	char *v = NULL;
	int rc;

	memset(info, 0, sizeof(*info));
	if (len > max_bytes)
		return IL_ETOOLARGE;
	if (!msg && len)
		return -EINVAL;
	while ((rc = hdr_next(msg, len, &pos, &f)) == 1) {
		if (name_is(msg, &f, "message-id")) {
			if (info->message_id)
				continue;
			if (!(v = hdr_value(msg, &f, &vlen)))
				goto nomem;
			/* An empty Message-ID identifies nothing: look on. */
			if (vlen)
				info->message_id = v;
			else
				free(v);
			v = NULL;
		} else if (name_is(msg, &f, "subject")) {
			if (!(v = hdr_value(msg, &f, &vlen)))
				goto nomem;
			char *d = rfc2047_decode(v, vlen);
			free(v);
			v = NULL;
			if (!d)
				goto nomem;
			/* Tags in every Subject count (fail closed); the
			 * first Subject is the one kept, as MUAs show it. */
			tlp_from_subject(d, strlen(d), info);
			if (!info->subject)
				info->subject = d;
			else
				free(d);
		} else if (name_is(msg, &f, "tlp")) {
			if (!(v = hdr_value(msg, &f, &vlen)))
				goto nomem;
			tlp_mark(info, v, vlen);
			free(v);
			v = NULL;
		} else if (name_is(msg, &f, "x-interlist-id")) {
			if (info->has_interlist_id)
				continue;
			if (!(v = hdr_value(msg, &f, &vlen)))
				goto nomem;
			if (parse_interlist_id(v, vlen, info->interlist_id) == 0)
				info->has_interlist_id = 1;
			free(v);
			v = NULL;
		} else if (name_is(msg, &f, "x-interlist-time")) {
			if (info->has_interlist_time)
				continue;
			if (!(v = hdr_value(msg, &f, &vlen)))
				goto nomem;
			if (util_time_parse(v, vlen, &info->interlist_time_ms) == 0)
				info->has_interlist_time = 1;
			free(v);
			v = NULL;
		}
	}
	if (rc < 0)
		goto fail;
	/* An empty header block (blank first line) lands here too: it is
	 * what prepare makes of a header of relay fields only, so it must
	 * stay readable, and it simply has no Message-ID. */
	if (!info->message_id) {
		rc = IL_ENOMSGID;
		goto fail;
	}
	return 0;

nomem:
	rc = -ENOMEM;
fail:
	mailhdr_free(info);
	return rc;
}

void mailhdr_free(struct il_mailinfo *info)
{
	if (!info)
		return;
	free(info->message_id);
	free(info->subject);
	memset(info, 0, sizeof(*info));
}

/* Copy src to dst with every line end (CRs then LF) made a bare LF; other
 * CRs stay. Returns bytes written (never more than n). */
static size_t crlf_to_lf(const uint8_t *src, size_t n, uint8_t *dst)
{
	size_t i = 0, o = 0;
	while (i < n) {
		const uint8_t *cr = memchr(src + i, '\r', n - i);
		size_t chunk = cr ? (size_t)(cr - (src + i)) : n - i;
		memcpy(dst + o, src + i, chunk);
		o += chunk;
		i += chunk;
		if (!cr)
			break;
		size_t j = i;
		while (j < n && src[j] == '\r')
			j++;
		if (j < n && src[j] == '\n') {
			dst[o++] = '\n';
			i = j + 1;
		} else {
			memcpy(dst + o, src + i, j - i);
			o += j - i;
			i = j;
		}
	}
	return o;
}

int mailhdr_prepare(const uint8_t *msg, size_t len, uint8_t **out, size_t *out_len)
{
	struct hdr_field f;
	size_t pos = 0, sep = 0, o = 0;
	uint8_t *buf;
	int rc;

	*out = NULL;
	*out_len = 0;
	if (!msg && len)
		return -EINVAL;
	/* Output only shrinks: fields are dropped and CRLF becomes LF. */
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	while ((rc = hdr_next(msg, len, &pos, &f)) == 1) {
		sep = pos;
		if (f.name_len >= RELAY_PREFIX_LEN &&
		    strncasecmp((const char *)msg + f.start, RELAY_PREFIX, RELAY_PREFIX_LEN) == 0)
			continue;
		/* f.next is past the field's last LF, so no CRLF straddles
		 * two copies. */
		o += crlf_to_lf(msg + f.start, f.next - f.start, buf + o);
	}
	if (rc < 0)
		goto fail;
	/* The separator line and the body, untouched but for line ends. */
	o += crlf_to_lf(msg + sep, len - sep, buf + o);
	*out = buf;
	*out_len = o;
	return 0;

fail:
	free(buf);
	return rc;
}
