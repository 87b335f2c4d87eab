/* crypto.c — Ed25519 signatures and SHA-256 through OpenSSL 3's EVP API. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "il/crypto.h"
#include "il/error.h"

/* Fetched once: EVP_sha256() makes every EVP_DigestInit look the
 * implementation up again in the provider store (a lock and a hash table). */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void crypto_sha256_parts(const void *a, size_t alen, const void *b, size_t blen,
			 uint8_t out[IL_SHA256_LEN])
{
	pthread_once(&sha256_once, sha256_fetch);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int olen = IL_SHA256_LEN;
	/* A fixed, always-available digest cannot fail short of memory
	 * exhaustion inside OpenSSL; treat that as a broken invariant. */
	IL_ASSERT(md && sha256_md);
	IL_ASSERT(EVP_DigestInit_ex(md, sha256_md, NULL) == 1 &&
		  EVP_DigestUpdate(md, a, alen) == 1 &&
		  (blen == 0 || EVP_DigestUpdate(md, b, blen) == 1) &&
		  EVP_DigestFinal_ex(md, out, &olen) == 1);
	EVP_MD_CTX_free(md);
}

void crypto_sha256(const void *data, size_t len, uint8_t out[IL_SHA256_LEN])
{
	crypto_sha256_parts(data, len, NULL, 0, out);
}

/*
 * Initialised signing and verifying contexts, a few per thread, by key.
 * EVP_DigestSignInit costs about a tenth of an Ed25519 signature (it builds
 * a PKEY_CTX and looks the algorithm up in the provider store); a context
 * can sign or verify again without it, as `openssl speed` does. A cached
 * context holds a reference to its key, so a key freed by a reload stays
 * alive (and its address unused) until its entry is evicted.
 */
#define CTX_CACHE 4

struct ctx_cache {
	struct {
		EVP_PKEY *key;
		EVP_MD_CTX *md;
		int verify;
	} e[CTX_CACHE];
	unsigned next;
};

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static int cache_ok;
/* OpenSSL 3.2 marks a one-shot context finalised, and a second
 * EVP_DigestSign/Verify on it fails unless it is initialised again (with
 * no key: it keeps its own). 3.0 and 3.1 reuse it as it is; their re-init
 * costs as much as a new context, which is all the cache saves. Set with
 * the cache key, so before any context is cached. */
static int cache_rearm;
/* Also in static TLS: the main thread never runs key destructors, and
 * this keeps its cache reachable (not a leak) until exit. */
static _Thread_local struct ctx_cache *cache_tls;

static void cache_free(void *arg)
{
	struct ctx_cache *c = arg;
	for (size_t i = 0; c && i < CTX_CACHE; i++)
		EVP_MD_CTX_free(c->e[i].md);
	free(c);
	cache_tls = NULL;
}

static void cache_init(void)
{
	cache_ok = pthread_key_create(&cache_key, cache_free) == 0;
	cache_rearm = OpenSSL_version_num() >= 0x30200000L;
}

static struct ctx_cache *cache_get(void)
{
	if (cache_tls)
		return cache_tls;
	pthread_once(&cache_once, cache_init);
	if (!cache_ok)
		return NULL;
	struct ctx_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (pthread_setspecific(cache_key, c) != 0) {
		free(c);
		return NULL;
	}
	return cache_tls = c;
}

/* The cached context for (key, verify), or NULL. */
static EVP_MD_CTX *cache_find(struct ctx_cache *c, EVP_PKEY *key, int verify)
{
	for (size_t i = 0; c && i < CTX_CACHE; i++)
		if (c->e[i].md && c->e[i].key == key && c->e[i].verify == verify)
			return c->e[i].md;
	return NULL;
}

static void cache_drop(struct ctx_cache *c, EVP_MD_CTX *md)
{
	for (size_t i = 0; c && i < CTX_CACHE; i++)
		if (c->e[i].md == md) {
			EVP_MD_CTX_free(md);
			c->e[i].md = NULL;
			c->e[i].key = NULL;
		}
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

/* Keep md (initialised for key) or free it when there is no cache: in an
 * empty slot if there is one, else in place of the oldest. */
static void cache_put(struct ctx_cache *c, EVP_PKEY *key, int verify, EVP_MD_CTX *md)
{
	if (!c) {
		EVP_MD_CTX_free(md);
		return;
	}
	size_t i = 0;
	while (i < CTX_CACHE && c->e[i].md)
		i++;
	if (i == CTX_CACHE) {
		i = c->next++ % CTX_CACHE;
		EVP_MD_CTX_free(c->e[i].md);
	}
	c->e[i].md = md;
	c->e[i].key = key;
	c->e[i].verify = verify;
}

/* 1 done, 0 the operation failed (a bad signature), -1 the (re-)init
 * failed. init_key NULL: md is initialised for its key already. */
static int op_once(EVP_MD_CTX *md, EVP_PKEY *init_key, int verify, struct sign_args *a,
		   const uint8_t *m, size_t mlen)
{
	size_t slen = IL_ED25519_SIG_LEN;
	if (init_key || cache_rearm) {
		int ok = verify ? EVP_DigestVerifyInit(md, NULL, NULL, NULL, init_key)
				: EVP_DigestSignInit(md, NULL, NULL, NULL, init_key);
		if (ok != 1)
			return -1;
	}
	if (verify)
		return EVP_DigestVerify(md, a->vsig, a->vsig_len, m, mlen) == 1;
	return EVP_DigestSign(md, a->sig, &slen, m, mlen) == 1 && slen == IL_ED25519_SIG_LEN;
}

/*
 * One signature or verification, with a cached context when there is one.
 * Whatever a cached context fails is done again on a fresh one, whose answer
 * stands: a context OpenSSL would not reuse costs a re-init, never a wrong
 * refusal. A bad signature fails both, and the cached context stays.
 */
static int run_op(EVP_PKEY *key, int verify, struct sign_args *a, const uint8_t *m, size_t mlen)
{
	struct ctx_cache *c = cache_get();
	EVP_MD_CTX *cached = cache_find(c, key, verify);
	int r;
	/* Refusals leave errors on the thread's OpenSSL queue; ours are codes. */
	ERR_set_mark();
	int done = cached ? op_once(cached, NULL, verify, a, m, mlen) : -1;
	if (done == 1) {
		r = 0;
		goto out;
	}
	/* Re-armed afresh (OpenSSL >= 3.2) and still refused: a bad signature,
	 * which a second context would only refuse again. */
	if (done == 0 && verify && cache_rearm) {
		r = IL_EBADSIG;
		goto out;
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md) {
		r = -ENOMEM;
		goto out;
	}
	if (op_once(md, key, verify, a, m, mlen) != 1) {
		EVP_MD_CTX_free(md);
		r = verify ? IL_EBADSIG : IL_ECRYPTO;
		goto out;
	}
	if (cached)
		cache_drop(c, cached);
	cache_put(c, key, verify, md);
	r = 0;
out:
	ERR_pop_to_mark();
	return r;
}

static int do_sign(void *arg, const uint8_t *m, size_t mlen)
{
	struct sign_args *a = arg;
	return run_op(a->key, 0, a, m, mlen);
}

static int do_verify(void *arg, const uint8_t *m, size_t mlen)
{
	struct sign_args *a = arg;
	return run_op(a->key, 1, a, m, mlen);
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
