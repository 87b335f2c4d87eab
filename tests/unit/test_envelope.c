/*
 * test_envelope.c — the envelope's wire form, signature and id.
 *
 * The test vector is also printed in docs/protocol.md: Ed25519 is
 * deterministic, so a fixed key and fixed fields give fixed bytes, and any
 * change to the encoding shows up here. The bytes were checked against an
 * independent encoder (Python `cryptography`) written from the spec.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "il/envelope.h"
#include "il/error.h"
#include "il/util.h"
#include "check.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#define MAX_MSG (1u << 20)

static const char tv_msg[] =
	"From: Analyst <analyst@centr.example>\n"
	"To: incidents@centr.example\n"
	"Subject: Test vector\n"
	"Date: Thu, 01 Jan 2026 00:00:00 +0000\n"
	"Message-ID: <test-vector-1@centr.example>\n"
	"\n"
	"This is the interlist envelope test vector.\n";

/* Key: Ed25519 private key (seed) 01 02 .. 20; public key
 * 79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664.
 * origin centr, list incidents, time 1767225600000, TLP amber, hop limit 16. */
static const char tv_hex[] =
	"02010563656e747209696e636964656e74730000019b76daa80002000000d446"
	"726f6d3a20416e616c797374203c616e616c7973744063656e74722e6578616d"
	"706c653e0a546f3a20696e636964656e74734063656e74722e6578616d706c65"
	"0a5375626a6563743a205465737420766563746f720a446174653a205468752c"
	"203031204a616e20323032362030303a30303a3030202b303030300a4d657373"
	"6167652d49443a203c746573742d766563746f722d314063656e74722e657861"
	"6d706c653e0a0a546869732069732074686520696e7465726c69737420656e76"
	"656c6f7065207465737420766563746f722e0a40ce17fcac61e05c9353ffe68f"
	"1cdf4b99009001ae77bbd5d9c25a945d7cb2d3bd9701ae29c68ec8e9ac8f7b12"
	"28f5f69e3603abe27f67c47e630ca4b6e70d0a0d10010563656e7472";
static const char tv_id[] = "2b5af8bd22659fa085cfd54505d22afdc6c24ebf0b26e78e497d9398a1464d75";
/* The same envelope as version 1 wrote it: version byte 1 and this
 * signature over "interlist/message/v1" || NUL || signed part. Stores and
 * peers may still hold such envelopes. */
static const char tv1_sig_hex[] =
	"8c47834b97ab547ae175dc009a601ae770c5088edfa9c71919210dfc117ed7ef"
	"946688c7e8797fce70fdb6bb71efd24d1ab0c86a8f8fabcf7d6e3efc8afbdf0a";
static const char tv1_id[] = "93af1e50ba6ec9ee895a28a1dd7c42c3c20f7222718ea31322aa9ca1a682d7f6";
static const char tv_pub_hex[] = "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664";

/* Offsets in the vector: signed part [0, 243), signature length byte and
 * signature [243, 308), hop part [308, 316). */
#define TV_SIGNED_LEN 243
#define TV_HOP_OFF 308
#define TV_LEN 316

static uint8_t tv[TV_LEN], tv1[TV_LEN];
static EVP_PKEY *tv_key;        /* private */
static EVP_PKEY *tv_pub;        /* public only, as a receiving relay has it */
static EVP_PKEY *other_key;

static size_t unhex(const char *hex, uint8_t *out, size_t max)
{
	size_t n = strlen(hex) / 2;
	if (n > max)
		abort();
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			abort();
		out[i] = (uint8_t)v;
	}
	return n;
}

static void setup(void)
{
	uint8_t seed[32], pub[32];
	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)(i + 1);
	CHECK_EQ(unhex(tv_hex, tv, sizeof(tv)), TV_LEN);
	memcpy(tv1, tv, TV_LEN);
	tv1[0] = 1;
	CHECK_EQ(unhex(tv1_sig_hex, tv1 + TV_SIGNED_LEN + 1, IL_ED25519_SIG_LEN),
		 IL_ED25519_SIG_LEN);
	tv_key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
	unhex(tv_pub_hex, pub, sizeof(pub));
	tv_pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, sizeof(pub));
	other_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!tv_key || !tv_pub || !other_key) {
		fprintf(stderr, "cannot make Ed25519 keys\n");
		exit(2);
	}
}

static int make_tv(struct il_envelope *env)
{
	return envelope_create(env, "centr", "incidents", 1767225600000ULL, IL_TLP_AMBER,
			       (const uint8_t *)tv_msg, strlen(tv_msg), 16, tv_key);
}

/*
 * An encoder written from the spec, independent of envelope.c, so the tests
 * can put invalid values on the wire. A NULL msg with msg_len > 0 announces
 * a length without the bytes.
 */
struct raw {
	uint8_t version, alg;
	const char *origin, *list;
	uint64_t time;
	uint8_t tlp;
	uint32_t msg_len;
	const char *msg;
	uint8_t sig_len;
	uint8_t hop_limit, count;
	const char *path[40];
};

static struct raw raw_default(void)
{
	struct raw r = {
		.version = 1, .alg = 1, .origin = "centr", .list = "incidents",
		.time = 1767225600000ULL, .tlp = 2, .msg_len = 3, .msg = "hi\n",
		.sig_len = 64, .hop_limit = 16, .count = 1, .path = { "centr" },
	};
	return r;
}

static size_t raw_build(const struct raw *r, uint8_t *out)
{
	uint8_t *p = out;
	*p++ = r->version;
	*p++ = r->alg;
	*p++ = (uint8_t)strlen(r->origin);
	memcpy(p, r->origin, strlen(r->origin));
	p += strlen(r->origin);
	*p++ = (uint8_t)strlen(r->list);
	memcpy(p, r->list, strlen(r->list));
	p += strlen(r->list);
	util_put_u64(p, r->time);
	p += 8;
	*p++ = r->tlp;
	util_put_u32(p, r->msg_len);
	p += 4;
	if (!r->msg)
		return (size_t)(p - out);
	memcpy(p, r->msg, r->msg_len);
	p += r->msg_len;
	*p++ = r->sig_len;
	memset(p, 0xa5, r->sig_len);
	p += r->sig_len;
	*p++ = r->hop_limit;
	*p++ = r->count;
	for (size_t i = 0; i < r->count; i++) {
		const char *id = r->path[i] ? r->path[i] : "x";
		*p++ = (uint8_t)strlen(id);
		memcpy(p, id, strlen(id));
		p += strlen(id);
	}
	return (size_t)(p - out);
}

static int raw_decode(const struct raw *r)
{
	uint8_t buf[4096];
	struct il_envelope env;
	size_t n = raw_build(r, buf);
	int rc = envelope_decode(buf, n, MAX_MSG, &env, NULL);
	CHECK(env.msg == NULL || rc == 0);     /* failure leaves nothing to free */
	envelope_free(&env);
	return rc;
}

static void test_vector(void)
{
	struct il_envelope env, dec;
	uint8_t *enc = NULL;
	size_t n = 0;
	char hex[IL_ID_HEX_LEN + 1];

	CHECK_EQ(make_tv(&env), 0);
	CHECK_EQ(envelope_encoded_len(&env), TV_LEN);
	CHECK_EQ(envelope_encode(&env, &enc, &n), 0);
	CHECK_EQ(n, TV_LEN);
	CHECK(enc && n == TV_LEN && memcmp(enc, tv, TV_LEN) == 0);
	if (enc && n == TV_LEN && memcmp(enc, tv, TV_LEN) != 0) {
		fprintf(stderr, "got: ");
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, "%02x", enc[i]);
		fprintf(stderr, "\n");
	}
	envelope_id_hex(env.id, hex);
	CHECK_STR(hex, tv_id);
	CHECK_EQ(envelope_verify(&env, tv_pub), 0);
	CHECK_EQ(envelope_verify(&env, other_key), IL_EBADSIG);

	/* encode_into writes the same bytes into a caller's buffer. */
	uint8_t into[TV_LEN + 1];
	into[TV_LEN] = 0x5a;
	CHECK_EQ(envelope_encode_into(&env, into), TV_LEN);
	CHECK(memcmp(into, tv, TV_LEN) == 0);
	CHECK_EQ(into[TV_LEN], 0x5a);
	free(enc);

	/* Decode the fixed bytes: fields, id, signature, and back again. */
	CHECK_EQ(envelope_decode(tv, TV_LEN, MAX_MSG, &dec, NULL), 0);
	CHECK_EQ(dec.version, IL_ENVELOPE_VERSION);
	CHECK_EQ(dec.alg, IL_ALG_ED25519);
	CHECK_STR(dec.origin, "centr");
	CHECK_STR(dec.list, "incidents");
	CHECK(dec.origin_time_ms == 1767225600000ULL);
	CHECK_EQ(dec.tlp, IL_TLP_AMBER);
	CHECK_EQ(dec.msg_len, strlen(tv_msg));
	CHECK(dec.msg && memcmp(dec.msg, tv_msg, dec.msg_len) == 0);
	CHECK_EQ(dec.sig_len, IL_ED25519_SIG_LEN);
	CHECK(memcmp(dec.sig, env.sig, IL_ED25519_SIG_LEN) == 0);
	CHECK_EQ(dec.hop_limit, 16);
	CHECK_EQ(dec.path_len, 1);
	CHECK_STR(dec.path[0], "centr");
	CHECK(memcmp(dec.id, env.id, IL_SHA256_LEN) == 0);
	CHECK_EQ(envelope_verify(&dec, tv_pub), 0);
	CHECK_EQ(envelope_encode(&dec, &enc, &n), 0);
	CHECK(n == TV_LEN && memcmp(enc, tv, TV_LEN) == 0);
	free(enc);

	/* A field changed after signing no longer verifies. */
	dec.tlp = IL_TLP_GREEN;
	CHECK_EQ(envelope_verify(&dec, tv_pub), IL_EBADSIG);
	dec.tlp = IL_TLP_AMBER;
	dec.msg[0] ^= 1;
	CHECK_EQ(envelope_verify(&dec, tv_pub), IL_EBADSIG);

	envelope_free(&dec);
	CHECK(dec.msg == NULL);
	envelope_free(&dec);    /* twice is safe */
	envelope_free(&env);
	envelope_free(&env);
	CHECK(env.msg == NULL);
}

/* A version 1 envelope still decodes, verifies and re-encodes as it came;
 * a version byte changed either way fails the signature. */
static void test_vector_v1(void)
{
	struct il_envelope dec;
	uint8_t *enc = NULL, buf[TV_LEN];
	size_t n = 0;
	char hex[IL_ID_HEX_LEN + 1];

	CHECK_EQ(envelope_decode(tv1, TV_LEN, MAX_MSG, &dec, NULL), 0);
	CHECK_EQ(dec.version, 1);
	envelope_id_hex(dec.id, hex);
	CHECK_STR(hex, tv1_id);
	CHECK_EQ(envelope_verify(&dec, tv_pub), 0);
	CHECK_EQ(envelope_verify(&dec, other_key), IL_EBADSIG);
	CHECK_EQ(envelope_encode(&dec, &enc, &n), 0);
	CHECK(enc && n == TV_LEN && memcmp(enc, tv1, TV_LEN) == 0);
	free(enc);
	dec.msg[0] ^= 1;
	CHECK_EQ(envelope_verify(&dec, tv_pub), IL_EBADSIG);
	envelope_free(&dec);

	/* A relay configured with envelope_version = 1 writes exactly this. */
	struct il_envelope env;
	CHECK_EQ(envelope_create_version(&env, 1, "centr", "incidents", 1767225600000ULL,
					 IL_TLP_AMBER, (const uint8_t *)tv_msg, strlen(tv_msg), 16,
					 tv_key), 0);
	CHECK_EQ(envelope_encode(&env, &enc, &n), 0);
	CHECK(enc && n == TV_LEN && memcmp(enc, tv1, TV_LEN) == 0);
	free(enc);
	/* A version no decoder accepts verifies under no rule. */
	env.version = 3;
	CHECK_EQ(envelope_verify(&env, tv_pub), IL_EBADSIG);
	env.version = 0;
	CHECK_EQ(envelope_verify(&env, tv_pub), IL_EBADSIG);
	envelope_free(&env);
	CHECK_EQ(envelope_create_version(&env, 3, "centr", "incidents", 1767225600000ULL,
					 IL_TLP_AMBER, (const uint8_t *)tv_msg, strlen(tv_msg), 16,
					 tv_key), IL_EVERSION);
	CHECK(env.msg == NULL);

	memcpy(buf, tv1, TV_LEN);
	buf[0] = 2;
	CHECK_EQ(envelope_decode(buf, TV_LEN, MAX_MSG, &dec, NULL), 0);
	CHECK_EQ(envelope_verify(&dec, tv_pub), IL_EBADSIG);
	envelope_free(&dec);
	memcpy(buf, tv, TV_LEN);
	buf[0] = 1;
	CHECK_EQ(envelope_decode(buf, TV_LEN, MAX_MSG, &dec, NULL), 0);
	CHECK_EQ(envelope_verify(&dec, tv_pub), IL_EBADSIG);
	envelope_free(&dec);
}

/* The store's own bytes decode with the id it keeps, not a hash of them. */
static void test_decode_stored(void)
{
	struct il_envelope env;
	uint8_t id[IL_SHA256_LEN], other[IL_SHA256_LEN];
	CHECK_EQ(envelope_id_parse(tv_id, id), 0);
	CHECK_EQ(envelope_decode_stored(tv, TV_LEN, id, &env), 0);
	CHECK(memcmp(env.id, id, IL_SHA256_LEN) == 0);
	CHECK_STR(env.origin, "centr");
	CHECK_EQ(env.msg_len, strlen(tv_msg));
	CHECK_EQ(envelope_verify(&env, tv_pub), 0);
	envelope_free(&env);
	memset(other, 0x5a, sizeof(other));
	CHECK_EQ(envelope_decode_stored(tv, TV_LEN, other, &env), 0);
	CHECK(memcmp(env.id, other, IL_SHA256_LEN) == 0);    /* as given */
	envelope_free(&env);
	/* Still every check of envelope_decode. */
	CHECK_EQ(envelope_decode_stored(tv, TV_LEN - 1, id, &env), IL_ETRUNCATED);
	CHECK(env.msg == NULL);
}

/*
 * Every single-byte change in the signed part or signature is caught, by
 * decode or by verify; a change in the hop part never moves the id or the
 * signature (it is outside both) and decodes only when still valid.
 */
static void test_tamper(void)
{
	static const uint8_t flips[] = { 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff };
	uint8_t buf[TV_LEN];
	uint8_t tv_idb[IL_SHA256_LEN];
	struct il_envelope env;
	int undetected = 0, hop_ok = 0, hop_bad = 0;

	CHECK_EQ(envelope_id_parse(tv_id, tv_idb), 0);
	for (size_t i = 0; i < TV_HOP_OFF; i++) {
		for (size_t f = 0; f < sizeof(flips); f++) {
			memcpy(buf, tv, TV_LEN);
			buf[i] ^= flips[f];
			if (envelope_decode(buf, TV_LEN, MAX_MSG, &env, NULL) != 0) {
				CHECK(env.msg == NULL);
				continue;
			}
			if (envelope_verify(&env, tv_pub) == 0) {
				undetected++;
				fprintf(stderr, "tamper at %zu ^%02x not detected\n", i, flips[f]);
			}
			/* The id moves with the signed part, not with the signature. */
			if (i < TV_SIGNED_LEN)
				CHECK(memcmp(env.id, tv_idb, IL_SHA256_LEN) != 0);
			else
				CHECK(memcmp(env.id, tv_idb, IL_SHA256_LEN) == 0);
			envelope_free(&env);
		}
	}
	CHECK_EQ(undetected, 0);

	for (size_t i = TV_HOP_OFF; i < TV_LEN; i++) {
		for (unsigned x = 1; x < 256; x++) {
			memcpy(buf, tv, TV_LEN);
			buf[i] ^= (uint8_t)x;
			if (envelope_decode(buf, TV_LEN, MAX_MSG, &env, NULL) != 0) {
				hop_bad++;
				continue;
			}
			hop_ok++;
			CHECK(memcmp(env.id, tv_idb, IL_SHA256_LEN) == 0);
			CHECK_EQ(envelope_verify(&env, tv_pub), 0);
			envelope_free(&env);
		}
	}
	/* Both kinds happen (hop limit 16 -> 17 decodes, count 0 does not). */
	CHECK(hop_ok > 0);
	CHECK(hop_bad > 0);
}

static void test_truncation(void)
{
	struct il_envelope env;
	size_t used = 12345;

	for (size_t n = 0; n < TV_LEN; n++) {
		CHECK_EQ(envelope_decode(tv, n, MAX_MSG, &env, NULL), IL_ETRUNCATED);
		CHECK(env.msg == NULL);
		CHECK_EQ(envelope_decode(tv, n, MAX_MSG, &env, &used), IL_ETRUNCATED);
		CHECK(env.msg == NULL);
	}
	CHECK_EQ(used, 12345);  /* not written on failure */

	/* Trailing bytes: refused without consumed, counted with it. */
	uint8_t buf[TV_LEN + 1];
	memcpy(buf, tv, TV_LEN);
	buf[TV_LEN] = 0;
	CHECK_EQ(envelope_decode(buf, sizeof(buf), MAX_MSG, &env, NULL), IL_ETRAILING);
	CHECK(env.msg == NULL);
	CHECK_EQ(envelope_decode(buf, sizeof(buf), MAX_MSG, &env, &used), 0);
	CHECK_EQ(used, TV_LEN);
	envelope_free(&env);
}

/* Each failure has its own code. */
static void test_fields(void)
{
	struct raw r;
	static char long_id[IL_ID_MAX + 2], long_list[IL_LIST_MAX + 2];

	r = raw_default();
	CHECK_EQ(raw_decode(&r), 0);

	r = raw_default(); r.version = 2;
	CHECK_EQ(raw_decode(&r), 0);
	r = raw_default(); r.version = 3;
	CHECK_EQ(raw_decode(&r), IL_EVERSION);
	r = raw_default(); r.version = 0;
	CHECK_EQ(raw_decode(&r), IL_EVERSION);
	r = raw_default(); r.alg = 2;   /* e.g. a future ECDSA P-256 */
	CHECK_EQ(raw_decode(&r), IL_EALG);
	r = raw_default(); r.alg = 0;
	CHECK_EQ(raw_decode(&r), IL_EALG);

	r = raw_default(); r.sig_len = 63;
	CHECK_EQ(raw_decode(&r), IL_EMALFORMED);
	r = raw_default(); r.sig_len = 65;
	CHECK_EQ(raw_decode(&r), IL_EMALFORMED);
	r = raw_default(); r.sig_len = 0;
	CHECK_EQ(raw_decode(&r), IL_EMALFORMED);

	r = raw_default(); r.msg_len = 0; r.msg = "";
	CHECK_EQ(raw_decode(&r), IL_EFIELD);
	r = raw_default(); r.tlp = 5;
	CHECK_EQ(raw_decode(&r), IL_EFIELD);
	r = raw_default(); r.tlp = 4;
	CHECK_EQ(raw_decode(&r), 0);

	/* Ids and list names: charset and length. */
	r = raw_default(); r.origin = ""; r.path[0] = "";
	CHECK_EQ(raw_decode(&r), IL_EFIELD);
	r = raw_default(); r.origin = "Centr"; r.path[0] = "Centr";
	CHECK_EQ(raw_decode(&r), IL_EFIELD);
	r = raw_default(); r.origin = "cen.tr"; r.path[0] = "cen.tr";
	CHECK_EQ(raw_decode(&r), IL_EFIELD);
	memset(long_id, 'a', IL_ID_MAX + 1);
	r = raw_default(); r.origin = long_id; r.path[0] = long_id;
	CHECK_EQ(raw_decode(&r), IL_EFIELD);
	long_id[IL_ID_MAX] = '\0';     /* exactly 32 is fine */
	r = raw_default(); r.origin = long_id; r.path[0] = long_id;
	CHECK_EQ(raw_decode(&r), 0);
	r = raw_default(); r.list = "";
	CHECK_EQ(raw_decode(&r), IL_EFIELD);
	r = raw_default(); r.list = "a/b";
	CHECK_EQ(raw_decode(&r), IL_EFIELD);
	r = raw_default(); r.list = "a b";
	CHECK_EQ(raw_decode(&r), IL_EFIELD);
	r = raw_default(); r.list = "ops.team_2-x";
	CHECK_EQ(raw_decode(&r), 0);
	memset(long_list, 'l', IL_LIST_MAX + 1);
	r = raw_default(); r.list = long_list;
	CHECK_EQ(raw_decode(&r), IL_EFIELD);
	long_list[IL_LIST_MAX] = '\0';
	r = raw_default(); r.list = long_list;
	CHECK_EQ(raw_decode(&r), 0);
	{
		/* A NUL inside an id is not an allowed character. */
		uint8_t buf[256];
		r = raw_default();
		size_t n = raw_build(&r, buf);
		buf[3 + 2] = 0;         /* "ce\0tr" */
		struct il_envelope env;
		CHECK_EQ(envelope_decode(buf, n, MAX_MSG, &env, NULL), IL_EFIELD);
	}

	/* Hop part. */
	r = raw_default(); r.hop_limit = 0;
	CHECK_EQ(raw_decode(&r), IL_EFIELD);
	r = raw_default(); r.hop_limit = IL_PATH_MAX + 1;
	CHECK_EQ(raw_decode(&r), IL_EFIELD);
	r = raw_default(); r.hop_limit = IL_PATH_MAX;
	CHECK_EQ(raw_decode(&r), 0);
	r = raw_default(); r.count = 0;
	CHECK_EQ(raw_decode(&r), IL_EFIELD);
	r = raw_default(); r.hop_limit = 2; r.count = 3;
	r.path[1] = "b"; r.path[2] = "c";
	CHECK_EQ(raw_decode(&r), IL_EFIELD);
	r = raw_default(); r.hop_limit = 3; r.count = 3;
	r.path[1] = "b"; r.path[2] = "c";
	CHECK_EQ(raw_decode(&r), 0);
	r = raw_default(); r.path[0] = "other";
	CHECK_EQ(raw_decode(&r), IL_EFIELD);
	r = raw_default(); r.count = 2; r.path[1] = "B";
	CHECK_EQ(raw_decode(&r), IL_EFIELD);
	r = raw_default(); r.hop_limit = IL_PATH_MAX; r.count = IL_PATH_MAX;
	for (size_t i = 1; i < IL_PATH_MAX; i++)
		r.path[i] = "relay";
	CHECK_EQ(raw_decode(&r), 0);
}

/* An announced size over the limit is refused before anything is allocated. */
static void test_too_large(void)
{
	uint8_t buf[256];
	struct il_envelope env;
	struct raw r = raw_default();
	size_t n;

	r.msg_len = 100;
	r.msg = NULL;           /* only the announcement, none of the bytes */
	n = raw_build(&r, buf);
	CHECK_EQ(envelope_decode(buf, n, 99, &env, NULL), IL_ETOOLARGE);
	CHECK(env.msg == NULL);
	CHECK_EQ(envelope_decode(buf, n, 100, &env, NULL), IL_ETRUNCATED);
	CHECK_EQ(envelope_decode(tv, TV_LEN, strlen(tv_msg) - 1, &env, NULL), IL_ETOOLARGE);
	CHECK_EQ(envelope_decode(tv, TV_LEN, strlen(tv_msg), &env, NULL), 0);
	envelope_free(&env);

	r.msg_len = UINT32_MAX;
	n = raw_build(&r, buf);
	CHECK_EQ(envelope_decode(buf, n, MAX_MSG, &env, NULL), IL_ETOOLARGE);

#ifndef UNDER_ASAN
	/*
	 * With little address space to spare, a decoder that allocated by the
	 * announced length (4 GiB) would fail with -ENOMEM; one that checks the
	 * bytes are there first says IL_ETRUNCATED, even with no size limit.
	 * (ASan reserves terabytes of shadow memory, so not under ASan.)
	 */
	struct rlimit old, lim;
	size_t used;
	long pages = 0, page = sysconf(_SC_PAGESIZE);
	FILE *f = fopen("/proc/self/statm", "r");
	if (f && fscanf(f, "%ld", &pages) == 1 && getrlimit(RLIMIT_AS, &old) == 0) {
		lim = old;
		lim.rlim_cur = (rlim_t)pages * (rlim_t)page + (256u << 20);
		if (old.rlim_cur == RLIM_INFINITY || lim.rlim_cur < old.rlim_cur) {
			CHECK_EQ(setrlimit(RLIMIT_AS, &lim), 0);
			CHECK_EQ(envelope_decode(buf, n, SIZE_MAX, &env, NULL), IL_ETRUNCATED);
			CHECK_EQ(envelope_decode(buf, n, SIZE_MAX, &env, &used), IL_ETRUNCATED);
			CHECK_EQ(envelope_decode(tv, TV_LEN, SIZE_MAX, &env, NULL), 0);
			envelope_free(&env);
			CHECK_EQ(setrlimit(RLIMIT_AS, &old), 0);
		}
	}
	if (f)
		fclose(f);
#endif
}

static void test_create_errors(void)
{
	struct il_envelope env;
	const uint8_t *m = (const uint8_t *)"x\n";

	CHECK_EQ(envelope_create(&env, "Centr", "l", 1, IL_TLP_RED, m, 2, 16, tv_key), IL_EFIELD);
	CHECK(env.msg == NULL);
	CHECK_EQ(envelope_create(&env, "", "l", 1, IL_TLP_RED, m, 2, 16, tv_key), IL_EFIELD);
	CHECK_EQ(envelope_create(&env, "c", "", 1, IL_TLP_RED, m, 2, 16, tv_key), IL_EFIELD);
	CHECK_EQ(envelope_create(&env, "c", "a!b", 1, IL_TLP_RED, m, 2, 16, tv_key), IL_EFIELD);
	CHECK_EQ(envelope_create(&env, "c", "l", 1, (enum il_tlp)5, m, 2, 16, tv_key), IL_EFIELD);
	CHECK_EQ(envelope_create(&env, "c", "l", 1, IL_TLP_RED, m, 0, 16, tv_key), IL_EFIELD);
	CHECK_EQ(envelope_create(&env, "c", "l", 1, IL_TLP_RED, m, 2, 0, tv_key), IL_EFIELD);
	CHECK_EQ(envelope_create(&env, "c", "l", 1, IL_TLP_RED, m, 2, IL_PATH_MAX + 1, tv_key),
		 IL_EFIELD);
	/* A public-only key cannot sign; nothing is left to free. */
	CHECK(envelope_create(&env, "c", "l", 1, IL_TLP_RED, m, 2, 16, tv_pub) < 0);
	CHECK(env.msg == NULL);
	CHECK(envelope_create(&env, "c", "l", 1, IL_TLP_RED, m, 2, 16, NULL) < 0);
	CHECK(env.msg == NULL);

	/* encode refuses what decode would refuse. */
	uint8_t *out = NULL;
	size_t n;
	CHECK_EQ(make_tv(&env), 0);
	env.path_len = 0;
	CHECK_EQ(envelope_encode(&env, &out, &n), IL_EFIELD);
	env.path_len = 1;
	strcpy(env.path[0], "other");
	CHECK_EQ(envelope_encode(&env, &out, &n), IL_EFIELD);
	strcpy(env.path[0], "centr");
	env.version = IL_ENVELOPE_VERSION + 1;
	CHECK_EQ(envelope_encode(&env, &out, &n), IL_EVERSION);
	env.version = IL_ENVELOPE_VERSION;
	CHECK_EQ(envelope_encode(&env, &out, &n), 0);
	free(out);
	envelope_free(&env);
}

static void test_path(void)
{
	struct il_envelope env, dec;
	char s[IL_PATH_STR_MAX];
	uint8_t *out;
	size_t n;

	CHECK_EQ(envelope_create(&env, "a", "l", 1, IL_TLP_GREEN, (const uint8_t *)"m\n", 2, 3,
				 tv_key), 0);
	CHECK_EQ(env.path_len, 1);
	CHECK_EQ(envelope_path_append(&env, "B"), IL_EFIELD);
	CHECK_EQ(envelope_path_append(&env, ""), IL_EFIELD);
	CHECK_EQ(envelope_path_append(&env, "b"), 0);
	CHECK_EQ(envelope_path_append(&env, "c"), 0);
	CHECK_EQ(envelope_path_append(&env, "d"), IL_EHOPS);
	CHECK_EQ(env.path_len, 3);
	envelope_path_str(&env, s, sizeof(s));
	CHECK_STR(s, "a!b!c");
	envelope_path_str(&env, s, 4);
	CHECK_STR(s, "a!b");
	envelope_path_str(&env, s, 3);
	CHECK_STR(s, "a!");
	envelope_path_str(&env, s, 1);
	CHECK_STR(s, "");
	CHECK_EQ(envelope_path_has(&env, "a"), 1);
	CHECK_EQ(envelope_path_has(&env, "c"), 1);
	CHECK_EQ(envelope_path_has(&env, "d"), 0);
	CHECK_EQ(envelope_path_has(&env, "ab"), 0);
	CHECK_EQ(envelope_path_has(&env, ""), 0);

	/* The path travels; the id and signature do not change with it. */
	CHECK_EQ(envelope_encode(&env, &out, &n), 0);
	CHECK_EQ(envelope_decode(out, n, MAX_MSG, &dec, NULL), 0);
	CHECK_EQ(dec.path_len, 3);
	CHECK_STR(dec.path[2], "c");
	CHECK(memcmp(dec.id, env.id, IL_SHA256_LEN) == 0);
	CHECK_EQ(envelope_verify(&dec, tv_pub), 0);
	free(out);
	envelope_free(&dec);
	envelope_free(&env);

	/* A full path of 32 longest ids fits IL_PATH_STR_MAX exactly. */
	char id[IL_ID_MAX + 1];
	memset(id, 'r', IL_ID_MAX);
	id[IL_ID_MAX] = '\0';
	CHECK_EQ(envelope_create(&env, id, "l", 1, IL_TLP_GREEN, (const uint8_t *)"m\n", 2,
				 IL_PATH_MAX, tv_key), 0);
	for (size_t i = 1; i < IL_PATH_MAX; i++)
		CHECK_EQ(envelope_path_append(&env, id), 0);
	CHECK_EQ(envelope_path_append(&env, "x"), IL_EHOPS);
	envelope_path_str(&env, s, sizeof(s));
	CHECK_EQ(strlen(s), IL_PATH_STR_MAX - 1);
	CHECK_EQ(envelope_encode(&env, &out, &n), 0);
	CHECK_EQ(envelope_decode(out, n, MAX_MSG, &dec, NULL), 0);
	CHECK_EQ(dec.path_len, IL_PATH_MAX);
	free(out);
	envelope_free(&dec);
	envelope_free(&env);
}

static void test_id_hex(void)
{
	uint8_t id[IL_SHA256_LEN], back[IL_SHA256_LEN];
	char hex[IL_ID_HEX_LEN + 1], upper[IL_ID_HEX_LEN + 2];

	for (size_t i = 0; i < sizeof(id); i++)
		id[i] = (uint8_t)(i * 37 + 11);
	envelope_id_hex(id, hex);
	CHECK_EQ(strlen(hex), IL_ID_HEX_LEN);
	CHECK_EQ(envelope_id_parse(hex, back), 0);
	CHECK(memcmp(id, back, sizeof(id)) == 0);
	for (size_t i = 0; i <= IL_ID_HEX_LEN; i++)
		upper[i] = (char)(hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 32 : hex[i]);
	memset(back, 0, sizeof(back));
	CHECK_EQ(envelope_id_parse(upper, back), 0);
	CHECK(memcmp(id, back, sizeof(id)) == 0);

	CHECK_EQ(envelope_id_parse(tv_id, back), 0);
	envelope_id_hex(back, hex);
	CHECK_STR(hex, tv_id);

	/* Wrong length or characters; id untouched then. */
	memset(back, 0x77, sizeof(back));
	upper[IL_ID_HEX_LEN] = 'a';
	upper[IL_ID_HEX_LEN + 1] = '\0';
	CHECK_EQ(envelope_id_parse(upper, back), -EINVAL);
	upper[IL_ID_HEX_LEN - 1] = '\0';
	CHECK_EQ(envelope_id_parse(upper, back), -EINVAL);
	CHECK_EQ(envelope_id_parse("", back), -EINVAL);
	strcpy(upper, tv_id);
	upper[10] = 'g';
	CHECK_EQ(envelope_id_parse(upper, back), -EINVAL);
	upper[10] = ' ';
	CHECK_EQ(envelope_id_parse(upper, back), -EINVAL);
	CHECK_EQ(back[0], 0x77);
}

/* A batch is envelopes back to back; consumed walks it. */
static void test_batch(void)
{
	static const char *lists[] = { "incidents", "vulns", "ops.misc" };
	struct il_envelope env[3], dec;
	uint8_t *batch;
	size_t total = 0, pos = 0, used;

	for (size_t i = 0; i < 3; i++) {
		char m[64];
		snprintf(m, sizeof(m), "Subject: %zu\n\nbody %zu\n", i, i);
		CHECK_EQ(envelope_create(&env[i], "centr", lists[i], 1000 + i, IL_TLP_GREEN,
					 (const uint8_t *)m, strlen(m), 8, tv_key), 0);
		total += envelope_encoded_len(&env[i]);
	}
	batch = malloc(total);
	for (size_t i = 0; i < 3; i++)
		pos += envelope_encode_into(&env[i], batch + pos);
	CHECK_EQ(pos, total);

	CHECK_EQ(envelope_decode(batch, total, MAX_MSG, &dec, NULL), IL_ETRAILING);
	pos = 0;
	for (size_t i = 0; i < 3; i++) {
		CHECK_EQ(envelope_decode(batch + pos, total - pos, MAX_MSG, &dec, &used), 0);
		CHECK_EQ(used, envelope_encoded_len(&env[i]));
		CHECK_STR(dec.list, lists[i]);
		CHECK(memcmp(dec.id, env[i].id, IL_SHA256_LEN) == 0);
		CHECK_EQ(envelope_verify(&dec, tv_pub), 0);
		envelope_free(&dec);
		pos += used;
	}
	CHECK_EQ(pos, total);
	/* A batch cut inside its last envelope. */
	CHECK_EQ(envelope_decode(batch + total - envelope_encoded_len(&env[2]),
				 envelope_encoded_len(&env[2]) - 1, MAX_MSG, &dec, &used),
		 IL_ETRUNCATED);
	free(batch);
	for (size_t i = 0; i < 3; i++)
		envelope_free(&env[i]);
}

int main(void)
{
	setup();
	test_vector();
	test_vector_v1();
	test_decode_stored();
	test_tamper();
	test_truncation();
	test_fields();
	test_too_large();
	test_create_errors();
	test_path();
	test_id_hex();
	test_batch();
	EVP_PKEY_free(tv_key);
	EVP_PKEY_free(tv_pub);
	EVP_PKEY_free(other_key);
	return check_done("test_envelope");
}
