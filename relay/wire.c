/* wire.c — request/reply frames between relays (see wire.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "il/error.h"
#include "il/util.h"
#include "wire.h"

static const uint8_t req_magic[4] = { 'I', 'L', 'R', 'Q' };
static const uint8_t rep_magic[4] = { 'I', 'L', 'R', 'P' };

const char *wire_result_name(int r)
{
	switch (r) {
	case RES_ACCEPTED: return "accepted";
	case RES_DUPLICATE: return "duplicate";
	case RES_TEMPFAIL: return "tempfail";
	case RES_MALFORMED: return "malformed";
	case RES_TOO_LARGE: return "too_large";
	case RES_UNKNOWN_LIST: return "unknown_list";
	case RES_UNKNOWN_ORIGIN: return "unknown_origin";
	case RES_BAD_SIGNATURE: return "bad_signature";
	case RES_STALE: return "stale";
	case RES_HOP_LIMIT: return "hop_limit";
	case RES_NOT_ACCEPTED: return "origin_not_accepted";
	case RES_TLP: return "held_tlp";
	}
	return "unknown";
}

void wbuf_put(struct wbuf *b, const void *data, size_t n)
{
	if (b->err)
		return;
	if (b->len + n > b->cap) {
		size_t ncap = b->cap ? b->cap : 256;
		while (ncap < b->len + n)
			ncap *= 2;
		uint8_t *np = realloc(b->p, ncap);
		if (!np) {
			b->err = -ENOMEM;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
}

void wbuf_u8(struct wbuf *b, uint8_t v) { wbuf_put(b, &v, 1); }

void wbuf_u32(struct wbuf *b, uint32_t v)
{
	uint8_t t[4];
	util_put_u32(t, v);
	wbuf_put(b, t, 4);
}

void wbuf_u64(struct wbuf *b, uint64_t v)
{
	uint8_t t[8];
	util_put_u64(t, v);
	wbuf_put(b, t, 8);
}

void wbuf_str8(struct wbuf *b, const char *s)
{
	size_t n = strlen(s);
	IL_ASSERT(n <= 255);
	wbuf_u8(b, (uint8_t)n);
	wbuf_put(b, s, n);
}

void wbuf_free(struct wbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

const uint8_t *rbuf_take(struct rbuf *r, size_t n)
{
	if (r->err || r->len - r->off < n) {
		r->err = IL_ETRUNCATED;
		return NULL;
	}
	const uint8_t *p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t rbuf_u8(struct rbuf *r)
{
	const uint8_t *p = rbuf_take(r, 1);
	return p ? p[0] : 0;
}

uint32_t rbuf_u32(struct rbuf *r)
{
	const uint8_t *p = rbuf_take(r, 4);
	return p ? util_get_u32(p) : 0;
}

uint64_t rbuf_u64(struct rbuf *r)
{
	const uint8_t *p = rbuf_take(r, 8);
	return p ? util_get_u64(p) : 0;
}

/* An id field: u8 length then [a-z0-9-]{1,32}. */
static int read_id(struct rbuf *r, char out[IL_ID_MAX + 1])
{
	uint8_t n = rbuf_u8(r);
	const uint8_t *p = rbuf_take(r, n);
	if (!p)
		return r->err;
	if (n == 0 || n > IL_ID_MAX)
		return IL_EFIELD;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return IL_EFIELD;
		out[i] = (char)c;
	}
	out[n] = 0;
	return 0;
}

int wire_req_encode(uint8_t type, const char *sender, const char *receiver, uint64_t time_ms,
		    const uint8_t boot[WIRE_BOOT_LEN], const uint8_t *body, size_t body_len,
		    EVP_PKEY *key, uint8_t **out, size_t *out_len)
{
	struct wbuf b = { 0 };
	uint8_t nonce[WIRE_NONCE_LEN];
	uint8_t sig[IL_ED25519_SIG_LEN];
	int r = util_random(nonce, sizeof(nonce));
	if (r < 0)
		return r;
	wbuf_put(&b, req_magic, 4);
	wbuf_u8(&b, WIRE_PROTO_VERSION);
	wbuf_u8(&b, type);
	wbuf_str8(&b, sender);
	wbuf_str8(&b, receiver);
	wbuf_u64(&b, time_ms);
	wbuf_put(&b, nonce, sizeof(nonce));
	wbuf_put(&b, boot, WIRE_BOOT_LEN);
	wbuf_u32(&b, (uint32_t)body_len);
	wbuf_put(&b, body, body_len);
	if (b.err) {
		r = b.err;
		goto fail;
	}
	r = crypto_sign(key, IL_CTX_REQUEST, b.p, b.len, sig);
	if (r < 0)
		goto fail;
	wbuf_u8(&b, sizeof(sig));
	wbuf_put(&b, sig, sizeof(sig));
	if (b.err) {
		r = b.err;
		goto fail;
	}
	*out = b.p;
	*out_len = b.len;
	return 0;
fail:
	wbuf_free(&b);
	return r;
}

int wire_req_decode(const uint8_t *buf, size_t len, struct wire_req *req)
{
	struct rbuf r = { .p = buf, .len = len };
	memset(req, 0, sizeof(*req));
	const uint8_t *m = rbuf_take(&r, 4);
	if (!m || memcmp(m, req_magic, 4) != 0)
		return IL_EMALFORMED;
	req->version = rbuf_u8(&r);
	if (r.err)
		return r.err;
	if (req->version != WIRE_PROTO_VERSION)
		return IL_EVERSION;
	req->type = rbuf_u8(&r);
	int e = read_id(&r, req->sender);
	if (e < 0)
		return e;
	e = read_id(&r, req->receiver);
	if (e < 0)
		return e;
	req->time_ms = rbuf_u64(&r);
	const uint8_t *nonce = rbuf_take(&r, WIRE_NONCE_LEN);
	const uint8_t *boot = rbuf_take(&r, WIRE_BOOT_LEN);
	uint32_t blen = rbuf_u32(&r);
	const uint8_t *body = rbuf_take(&r, blen);
	if (r.err)
		return r.err;
	memcpy(req->nonce, nonce, WIRE_NONCE_LEN);
	memcpy(req->boot, boot, WIRE_BOOT_LEN);
	req->body = body;
	req->body_len = blen;
	req->signed_part = buf;
	req->signed_len = r.off;
	uint8_t slen = rbuf_u8(&r);
	req->sig = rbuf_take(&r, slen);
	if (r.err)
		return r.err;
	req->sig_len = slen;
	if (r.off != len)
		return IL_ETRAILING;
	if (req->type < WIRE_HELLO || req->type > WIRE_PULL)
		return IL_EFIELD;
	return 0;
}

int wire_req_verify(const struct wire_req *req, EVP_PKEY *const *keys, size_t n_keys)
{
	for (size_t i = 0; i < n_keys; i++)
		if (crypto_verify(keys[i], IL_CTX_REQUEST, req->signed_part, req->signed_len,
				  req->sig, req->sig_len) == 0)
			return 0;
	return IL_EBADSIG;
}

void wire_reply_header(struct wbuf *b, uint8_t status, const uint8_t boot[WIRE_BOOT_LEN])
{
	wbuf_put(b, rep_magic, 4);
	wbuf_u8(b, WIRE_PROTO_VERSION);
	wbuf_u8(b, status);
	wbuf_put(b, boot, WIRE_BOOT_LEN);
}

int wire_reply_decode(const uint8_t *buf, size_t len, uint8_t *status,
		      uint8_t boot[WIRE_BOOT_LEN], struct rbuf *body)
{
	struct rbuf r = { .p = buf, .len = len };
	const uint8_t *m = rbuf_take(&r, 4);
	if (!m || memcmp(m, rep_magic, 4) != 0)
		return IL_EMALFORMED;
	uint8_t v = rbuf_u8(&r);
	*status = rbuf_u8(&r);
	const uint8_t *b = rbuf_take(&r, WIRE_BOOT_LEN);
	if (r.err)
		return r.err;
	if (v != WIRE_PROTO_VERSION)
		return IL_EVERSION;
	memcpy(boot, b, WIRE_BOOT_LEN);
	*body = (struct rbuf){ .p = buf + r.off, .len = len - r.off };
	return 0;
}

int wire_envelopes_each(struct rbuf *r, int (*fn)(void *arg, const uint8_t *p, size_t n),
			void *arg)
{
	uint32_t count = rbuf_u32(r);
	if (r->err)
		return r->err;
	if (count > WIRE_MAX_BATCH)
		return IL_ETOOLARGE;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t n = rbuf_u32(r);
		const uint8_t *p = rbuf_take(r, n);
		if (!p)
			return r->err;
		int e = fn(arg, p, n);
		if (e < 0)
			return e;
	}
	return 0;
}
