/* crypto.c — Ed25519 signatures and SHA-256 through OpenSSL 3's EVP API. */
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#include "il/crypto.h"
#include "il/error.h"

void crypto_sha256(const void *data, size_t len, uint8_t out[IL_SHA256_LEN])
{
	unsigned int olen = IL_SHA256_LEN;
	/* EVP_Digest with a fixed, always-available digest cannot fail short of
	 * memory exhaustion inside OpenSSL; treat that as a broken invariant. */
	IL_ASSERT(EVP_Digest(data, len, out, &olen, EVP_sha256(), NULL) == 1);
}

/*
 * The signed bytes are ctx || NUL || data. Ed25519 in OpenSSL is one-shot
 * (no streaming), so small inputs are joined on the stack and large ones in a
 * heap buffer.
 */
static int with_prefixed(const char *ctx, const uint8_t *data, size_t len,
			 int (*fn)(void *arg, const uint8_t *m, size_t mlen), void *arg)
{
	size_t clen = strlen(ctx) + 1;
	uint8_t stackbuf[4096];
	uint8_t *buf = stackbuf;
	/* clen + len must not wrap, or the copy below would overrun buf. */
	if (len > SIZE_MAX - clen)
		return IL_ETOOLARGE;
	if (clen + len > sizeof(stackbuf)) {
		buf = OPENSSL_malloc(clen + len);
		if (!buf)
			return -ENOMEM;
	}
	memcpy(buf, ctx, clen);
	if (len)
		memcpy(buf + clen, data, len);
	int r = fn(arg, buf, clen + len);
	if (buf != stackbuf)
		OPENSSL_free(buf);
	return r;
}

struct sign_args {
	EVP_PKEY *key;
	uint8_t *sig;
	const uint8_t *vsig;
	size_t vsig_len;
};

static int do_sign(void *arg, const uint8_t *m, size_t mlen)
{
	struct sign_args *a = arg;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md)
		return -ENOMEM;
	size_t slen = IL_ED25519_SIG_LEN;
	int r = IL_ECRYPTO;
	if (EVP_DigestSignInit(md, NULL, NULL, NULL, a->key) == 1 &&
	    EVP_DigestSign(md, a->sig, &slen, m, mlen) == 1 && slen == IL_ED25519_SIG_LEN)
		r = 0;
	EVP_MD_CTX_free(md);
	return r;
}

static int do_verify(void *arg, const uint8_t *m, size_t mlen)
{
	struct sign_args *a = arg;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md)
		return -ENOMEM;
	int r = IL_EBADSIG;
	if (EVP_DigestVerifyInit(md, NULL, NULL, NULL, a->key) == 1 &&
	    EVP_DigestVerify(md, a->vsig, a->vsig_len, m, mlen) == 1)
		r = 0;
	EVP_MD_CTX_free(md);
	return r;
}

int crypto_sign(EVP_PKEY *key, const char *ctx, const uint8_t *data, size_t len,
		uint8_t sig[IL_ED25519_SIG_LEN])
{
	if (!key || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519)
		return IL_EKEY;
	struct sign_args a = { .key = key, .sig = sig };
	return with_prefixed(ctx, data, len, do_sign, &a);
}

int crypto_verify(EVP_PKEY *pub, const char *ctx, const uint8_t *data, size_t len,
		  const uint8_t *sig, size_t sig_len)
{
	if (!pub || EVP_PKEY_get_id(pub) != EVP_PKEY_ED25519)
		return IL_EKEY;
	if (sig_len != IL_ED25519_SIG_LEN)
		return IL_EBADSIG;
	struct sign_args a = { .key = pub, .vsig = sig, .vsig_len = sig_len };
	return with_prefixed(ctx, data, len, do_verify, &a);
}
