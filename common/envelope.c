/*
 * envelope.c — build, sign, encode and decode the envelope (wire form in
 * include/il/envelope.h and docs/protocol.md).
 *
 * The decoder reads untrusted bytes from peers. It parses and validates the
 * whole envelope in place first and only then makes its one allocation (the
 * message copy), so a rejected envelope costs no allocation and leaves
 * nothing to free. There is exactly one valid encoding of each envelope
 * (every length is explicit and checked), which is why re-encoding a decoded
 * envelope gives back the same bytes and why the id can be taken from the
 * received bytes directly.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "il/crypto.h"
#include "il/envelope.h"
#include "il/error.h"
#include "il/util.h"

/* Fixed-size parts of the signed part: version, alg, two length bytes,
 * origin time, tlp, message length. */
#define SIGNED_FIXED (1 + 1 + 1 + 1 + 8 + 1 + 4)

/* Relay ids are [a-z0-9-]; list names add '.' and '_'. */
static bool id_char_ok(uint8_t c, bool is_list)
{
	if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
		return true;
	return is_list && (c == '.' || c == '_');
}

static bool id_bytes_ok(const uint8_t *s, size_t n, size_t max, bool is_list)
{
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!id_char_ok(s[i], is_list))
			return false;
	return true;
}

/* A NUL-terminated id held in a char[max + 1]: never reads past max + 1. */
static bool id_str_ok(const char *s, size_t max, bool is_list)
{
	if (!s)
		return false;
	return id_bytes_ok((const uint8_t *)s, strnlen(s, max + 1), max, is_list);
}

/*
 * Lengths used for encoding are bounded by the arrays they live in, so an
 * envelope whose strings lost their NUL still cannot make the encoder read
 * or write out of bounds (envelope_encode refuses such an envelope anyway).
 */
static size_t origin_len(const struct il_envelope *env)
{
	return strnlen(env->origin, IL_ID_MAX);
}

static size_t list_len(const struct il_envelope *env)
{
	return strnlen(env->list, IL_LIST_MAX);
}

static size_t hop_id_len(const struct il_envelope *env, size_t i)
{
	return strnlen(env->path[i], IL_ID_MAX);
}

static size_t signed_len(const struct il_envelope *env)
{
	return SIGNED_FIXED + origin_len(env) + list_len(env) + env->msg_len;
}

static uint8_t *put_str(uint8_t *p, const char *s, size_t n)
{
	*p++ = (uint8_t)n;
	memcpy(p, s, n);
	return p + n;
}

/* The signed part's fields up to the message length: at most this many. */
#define SIGNED_HEAD_MAX (SIGNED_FIXED + IL_ID_MAX + IL_LIST_MAX)

static uint8_t *put_signed_head(const struct il_envelope *env, uint8_t *p)
{
	*p++ = env->version;
	*p++ = env->alg;
	p = put_str(p, env->origin, origin_len(env));
	p = put_str(p, env->list, list_len(env));
	util_put_u64(p, env->origin_time_ms);
	p += 8;
	*p++ = (uint8_t)env->tlp;
	util_put_u32(p, (uint32_t)env->msg_len);
	return p + 4;
}

/* Write the signed part; p must have signed_len(env) bytes. */
static uint8_t *put_signed(const struct il_envelope *env, uint8_t *p)
{
	p = put_signed_head(env, p);
	if (env->msg_len)
		memcpy(p, env->msg, env->msg_len);
	return p + env->msg_len;
}

/* The envelope id (SHA-256 of the signed part) from the fields, without
 * copying the message next to them. */
static void signed_id(const struct il_envelope *env, uint8_t out[IL_SHA256_LEN])
{
	uint8_t head[SIGNED_HEAD_MAX];
	size_t n = (size_t)(put_signed_head(env, head) - head);
	crypto_sha256_parts(head, n, env->msg, env->msg_len, out);
}

/* The signed part in a new buffer, for version 1 signatures: OpenSSL's
 * Ed25519 is one-shot, so it needs the bytes contiguous. */
static int signed_build(const struct il_envelope *env, uint8_t **out, size_t *out_len)
{
	size_t n = signed_len(env);
	uint8_t *buf = malloc(n);
	if (!buf)
		return -ENOMEM;
	put_signed(env, buf);
	*out = buf;
	*out_len = n;
	return 0;
}

static bool version_known(unsigned v)
{
	return v >= IL_ENVELOPE_VERSION_MIN && v <= IL_ENVELOPE_VERSION;
}

/* Everything envelope_decode() checks, on a struct (before encoding it). */
static int check_fields(const struct il_envelope *env)
{
	if (!version_known(env->version))
		return IL_EVERSION;
	if (env->alg != IL_ALG_ED25519)
		return IL_EALG;
	if (env->sig_len != IL_ED25519_SIG_LEN)
		return IL_EMALFORMED;
	if (!id_str_ok(env->origin, IL_ID_MAX, false) || !id_str_ok(env->list, IL_LIST_MAX, true))
		return IL_EFIELD;
	if ((unsigned)env->tlp > IL_TLP_RED)
		return IL_EFIELD;
	if (env->msg_len == 0 || !env->msg)
		return IL_EFIELD;
	if (env->msg_len > UINT32_MAX)
		return IL_ETOOLARGE;
	if (env->hop_limit == 0 || env->hop_limit > IL_PATH_MAX)
		return IL_EFIELD;
	if (env->path_len == 0 || env->path_len > env->hop_limit)
		return IL_EFIELD;
	for (size_t i = 0; i < env->path_len; i++)
		if (!id_str_ok(env->path[i], IL_ID_MAX, false))
			return IL_EFIELD;
	if (strcmp(env->path[0], env->origin) != 0)
		return IL_EFIELD;
	return 0;
}

/* A version 1 signature, over the whole signed part (which OpenSSL's
 * one-shot Ed25519 needs contiguous): into sig_out, or verified (NULL). */
static int v1_signature(const struct il_envelope *env, EVP_PKEY *key, uint8_t *sig_out)
{
	uint8_t *sp;
	size_t sp_len;
	int rc = signed_build(env, &sp, &sp_len);
	if (rc)
		return rc;
	rc = sig_out ? crypto_sign(key, IL_CTX_MESSAGE_V1, sp, sp_len, sig_out)
		     : crypto_verify(key, IL_CTX_MESSAGE_V1, sp, sp_len, env->sig, env->sig_len);
	free(sp);
	return rc;
}

int envelope_create(struct il_envelope *env, const char *origin, const char *list,
		    uint64_t origin_time_ms, enum il_tlp tlp, const uint8_t *msg,
		    size_t msg_len, uint8_t hop_limit, EVP_PKEY *sign_key)
{
	return envelope_create_version(env, IL_ENVELOPE_VERSION, origin, list, origin_time_ms,
				       tlp, msg, msg_len, hop_limit, sign_key);
}

int envelope_create_version(struct il_envelope *env, uint8_t version, const char *origin,
			    const char *list, uint64_t origin_time_ms, enum il_tlp tlp,
			    const uint8_t *msg, size_t msg_len, uint8_t hop_limit,
			    EVP_PKEY *sign_key)
{
	int rc;

	memset(env, 0, sizeof(*env));
	if (!version_known(version))
		return IL_EVERSION;
	if (!id_str_ok(origin, IL_ID_MAX, false) || !id_str_ok(list, IL_LIST_MAX, true))
		return IL_EFIELD;
	if ((unsigned)tlp > IL_TLP_RED || msg_len == 0)
		return IL_EFIELD;
	if (!msg)
		return -EINVAL;
	/* The wire length is a u32. */
	if (msg_len > UINT32_MAX)
		return IL_ETOOLARGE;
	if (hop_limit == 0 || hop_limit > IL_PATH_MAX)
		return IL_EFIELD;

	env->version = version;
	env->alg = IL_ALG_ED25519;
	strcpy(env->origin, origin);
	strcpy(env->list, list);
	env->origin_time_ms = origin_time_ms;
	env->tlp = tlp;
	env->hop_limit = hop_limit;
	env->path_len = 1;
	strcpy(env->path[0], origin);
	env->msg = malloc(msg_len);
	if (!env->msg) {
		rc = -ENOMEM;
		goto fail;
	}
	memcpy(env->msg, msg, msg_len);
	env->msg_len = msg_len;

	/* Version 2 signs the id: Ed25519 hashes what it signs twice with
	 * SHA-512, and the id already stands for every signed byte. */
	signed_id(env, env->id);
	if (version == 1)
		rc = v1_signature(env, sign_key, env->sig);
	else
		rc = crypto_sign(sign_key, IL_CTX_MESSAGE, env->id, IL_SHA256_LEN, env->sig);
	if (rc)
		goto fail;
	env->sig_len = IL_ED25519_SIG_LEN;
	return 0;

fail:
	envelope_free(env);
	return rc;
}

size_t envelope_encoded_len(const struct il_envelope *env)
{
	size_t n = signed_len(env) + 1 + env->sig_len + 1 + 1;
	for (size_t i = 0; i < env->path_len && i < IL_PATH_MAX; i++)
		n += 1 + hop_id_len(env, i);
	return n;
}

size_t envelope_encode_into(const struct il_envelope *env, uint8_t *buf)
{
	/* Bounds that keep the output within envelope_encoded_len() and the
	 * length fields honest; an envelope from create/decode meets them. */
	IL_ASSERT(env->msg_len <= UINT32_MAX);
	IL_ASSERT(env->sig_len <= IL_SIG_MAX);
	IL_ASSERT(env->path_len <= IL_PATH_MAX);

	uint8_t *p = put_signed(env, buf);
	*p++ = (uint8_t)env->sig_len;
	memcpy(p, env->sig, env->sig_len);
	p += env->sig_len;
	*p++ = env->hop_limit;
	*p++ = env->path_len;
	for (size_t i = 0; i < env->path_len; i++)
		p = put_str(p, env->path[i], hop_id_len(env, i));
	return (size_t)(p - buf);
}

int envelope_encode(const struct il_envelope *env, uint8_t **out, size_t *out_len)
{
	/* Never put on the wire what a peer's decoder would refuse. */
	int rc = check_fields(env);
	if (rc)
		return rc;
	size_t n = envelope_encoded_len(env);
	uint8_t *buf = malloc(n);
	if (!buf)
		return -ENOMEM;
	size_t w = envelope_encode_into(env, buf);
	IL_ASSERT(w == n);
	*out = buf;
	*out_len = n;
	return 0;
}

/* A bounds-checked cursor over untrusted bytes. */
struct reader {
	const uint8_t *buf;
	size_t len;
	size_t pos;
};

static bool rd_has(const struct reader *r, size_t n)
{
	return r->len - r->pos >= n;    /* pos <= len always: no overflow */
}

static int rd_u8(struct reader *r, uint8_t *v)
{
	if (!rd_has(r, 1))
		return IL_ETRUNCATED;
	*v = r->buf[r->pos++];
	return 0;
}

/* u8 length, then an id of 1..max allowed characters, into out[max + 1].
 * The announced length is judged before the bytes are needed, so an
 * impossible length is IL_EFIELD even on a short buffer. */
static int rd_id(struct reader *r, size_t max, bool is_list, char *out)
{
	uint8_t n;
	int rc = rd_u8(r, &n);
	if (rc)
		return rc;
	if (n == 0 || n > max)
		return IL_EFIELD;
	if (!rd_has(r, n))
		return IL_ETRUNCATED;
	const uint8_t *s = r->buf + r->pos;
	if (!id_bytes_ok(s, n, max, is_list))
		return IL_EFIELD;
	memcpy(out, s, n);
	out[n] = '\0';
	r->pos += n;
	return 0;
}

/* known_id: the id of these bytes, known to the caller (NULL: hash them). */
static int decode(const uint8_t *buf, size_t len, size_t max_msg, struct il_envelope *env,
		  size_t *consumed, const uint8_t *known_id)
{
	struct reader r = { .buf = buf, .len = len, .pos = 0 };
	const uint8_t *msg;
	size_t signed_end;
	uint8_t b;
	int rc;

	memset(env, 0, sizeof(*env));

	if ((rc = rd_u8(&r, &env->version)))
		return rc;
	if (!version_known(env->version))
		return IL_EVERSION;
	if ((rc = rd_u8(&r, &env->alg)))
		return rc;
	if (env->alg != IL_ALG_ED25519)
		return IL_EALG;
	if ((rc = rd_id(&r, IL_ID_MAX, false, env->origin)))
		return rc;
	if ((rc = rd_id(&r, IL_LIST_MAX, true, env->list)))
		return rc;
	if (!rd_has(&r, 8))
		return IL_ETRUNCATED;
	env->origin_time_ms = util_get_u64(buf + r.pos);
	r.pos += 8;
	if ((rc = rd_u8(&r, &b)))
		return rc;
	if (b > IL_TLP_RED)
		return IL_EFIELD;
	env->tlp = (enum il_tlp)b;

	if (!rd_has(&r, 4))
		return IL_ETRUNCATED;
	uint32_t mlen = util_get_u32(buf + r.pos);
	r.pos += 4;
	if (mlen == 0)
		return IL_EFIELD;
	/* Before looking for the bytes: a peer announcing a huge message gets
	 * a size refusal, not a wait for data that must be refused anyway. */
	if (mlen > max_msg)
		return IL_ETOOLARGE;
	if (!rd_has(&r, mlen))
		return IL_ETRUNCATED;
	msg = buf + r.pos;
	r.pos += mlen;
	signed_end = r.pos;

	if ((rc = rd_u8(&r, &b)))
		return rc;
	/* The length each algorithm's signatures have; only Ed25519 so far. */
	if (b != IL_ED25519_SIG_LEN)
		return IL_EMALFORMED;
	if (!rd_has(&r, b))
		return IL_ETRUNCATED;
	memcpy(env->sig, buf + r.pos, b);
	env->sig_len = b;
	r.pos += b;

	if ((rc = rd_u8(&r, &env->hop_limit)))
		return rc;
	if (env->hop_limit == 0 || env->hop_limit > IL_PATH_MAX)
		return IL_EFIELD;
	if ((rc = rd_u8(&r, &env->path_len)))
		return rc;
	if (env->path_len == 0 || env->path_len > env->hop_limit)
		return IL_EFIELD;
	for (size_t i = 0; i < env->path_len; i++)
		if ((rc = rd_id(&r, IL_ID_MAX, false, env->path[i])))
			return rc;
	if (strcmp(env->path[0], env->origin) != 0)
		return IL_EFIELD;

	if (consumed)
		*consumed = r.pos;
	else if (r.pos != len)
		return IL_ETRAILING;

	/* Valid: now the one allocation, and the id straight from the
	 * received bytes (the encoding is canonical, so they are the bytes
	 * the origin signed). */
	env->msg = malloc(mlen);
	if (!env->msg)
		return -ENOMEM;
	memcpy(env->msg, msg, mlen);
	env->msg_len = mlen;
	if (known_id)
		memcpy(env->id, known_id, IL_SHA256_LEN);
	else
		crypto_sha256(buf, signed_end, env->id);
	return 0;
}

int envelope_decode(const uint8_t *buf, size_t len, size_t max_msg,
		    struct il_envelope *env, size_t *consumed)
{
	return decode(buf, len, max_msg, env, consumed, NULL);
}

int envelope_decode_stored(const uint8_t *buf, size_t len, const uint8_t id[IL_SHA256_LEN],
			   struct il_envelope *env)
{
	return decode(buf, len, SIZE_MAX, env, NULL, id);
}

int envelope_verify(const struct il_envelope *env, EVP_PKEY *pub)
{
	/* What decode or create could not have produced cannot carry a valid
	 * signature: refuse without building anything. */
	if (env->alg != IL_ALG_ED25519 || env->sig_len != IL_ED25519_SIG_LEN ||
	    !env->msg || env->msg_len > UINT32_MAX)
		return IL_EBADSIG;
	if (env->version == 2) {
		/* Over the id of the fields as they are now, not env->id: a
		 * field changed since decoding must fail here. */
		uint8_t id[IL_SHA256_LEN];
		signed_id(env, id);
		return crypto_verify(pub, IL_CTX_MESSAGE, id, sizeof(id), env->sig, env->sig_len);
	}
	if (env->version != 1)
		return IL_EBADSIG;
	return v1_signature(env, pub, NULL);
}

int envelope_path_append(struct il_envelope *env, const char *relay_id)
{
	if (!id_str_ok(relay_id, IL_ID_MAX, false))
		return IL_EFIELD;
	if (env->path_len >= env->hop_limit || env->path_len >= IL_PATH_MAX)
		return IL_EHOPS;
	strcpy(env->path[env->path_len++], relay_id);
	return 0;
}

int envelope_path_has(const struct il_envelope *env, const char *relay_id)
{
	for (size_t i = 0; i < env->path_len && i < IL_PATH_MAX; i++)
		if (strncmp(env->path[i], relay_id, IL_ID_MAX + 1) == 0)
			return 1;
	return 0;
}

void envelope_path_str(const struct il_envelope *env, char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen == 0)
		return;
	/* Truncates to fit, always NUL-terminated; IL_PATH_STR_MAX is enough. */
	for (size_t i = 0; i < env->path_len && i < IL_PATH_MAX; i++) {
		size_t n = hop_id_len(env, i);
		if (i > 0 && o < outlen - 1)
			out[o++] = '!';
		if (n > outlen - 1 - o)
			n = outlen - 1 - o;
		memcpy(out + o, env->path[i], n);
		o += n;
	}
	out[o] = '\0';
}

void envelope_id_hex(const uint8_t id[IL_SHA256_LEN], char out[IL_ID_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < IL_SHA256_LEN; i++) {
		out[2 * i] = digits[id[i] >> 4];
		out[2 * i + 1] = digits[id[i] & 0xf];
	}
	out[IL_ID_HEX_LEN] = '\0';
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int envelope_id_parse(const char *hex, uint8_t id[IL_SHA256_LEN])
{
	uint8_t tmp[IL_SHA256_LEN];

	if (!hex)
		return -EINVAL;
	/* A NUL stops the loop (it is not a hex digit), so a short string is
	 * never read past its end; id is untouched on failure. */
	for (size_t i = 0; i < IL_SHA256_LEN; i++) {
		int hi = hex_val(hex[2 * i]);
		if (hi < 0)
			return -EINVAL;
		int lo = hex_val(hex[2 * i + 1]);
		if (lo < 0)
			return -EINVAL;
		tmp[i] = (uint8_t)(hi << 4 | lo);
	}
	if (hex[IL_ID_HEX_LEN] != '\0')
		return -EINVAL;
	memcpy(id, tmp, sizeof(tmp));
	return 0;
}

void envelope_free(struct il_envelope *env)
{
	if (!env)
		return;
	free(env->msg);
	env->msg = NULL;
	env->msg_len = 0;
}
