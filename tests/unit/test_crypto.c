/* test_crypto.c — signatures (crypto.c) and key files (keys.c). */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "il/crypto.h"
#include "il/error.h"
#include "check.h"

static char dir[256];

/* A path in the test folder, in a small ring of buffers: valid for the
 * next three calls only. */
static const char *kpath(const char *id, const char *suffix)
{
	static char bufs[4][512];
	static int n;
	char *p = bufs[n++ % 4];
	snprintf(p, 512, "%s/%s%s", dir, id, suffix);
	return p;
}

static int file_mode(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	return (int)(st.st_mode & 07777);
}

static int count_entries(const char *path)
{
	DIR *d = opendir(path);
	int n = 0;
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static int copy_with_mode(const char *from, const char *to, mode_t mode)
{
	char buf[8192];
	FILE *f = fopen(from, "rb");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	unlink(to);
	int fd = open(to, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return -1;
	int ok = write(fd, buf, n) == (ssize_t)n;
	close(fd);
	/* chmod after creation on purpose: the umask must not soften the mode
	 * under test. */
	return ok && chmod(to, mode) == 0 ? 0 : -1;
}

static int contains(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle) != NULL;
}

/* SHA-256 fingerprint computed here with OpenSSL directly, not with
 * crypto_sha256 or keys.c, so the test does not check the code with itself. */
static void expected_fpr(const uint8_t *der, int len, char out[200])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	CHECK(EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) == 1);
	CHECK_EQ(mdlen, 32);
	strcpy(out, "SHA256");
	for (unsigned i = 0; i < mdlen; i++)
		sprintf(out + strlen(out), ":%02X", md[i]);
}

static X509 *read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

static void test_generate(void)
{
	char err[512] = "";
	/* keys_generate creates a missing folder with mode 0700. */
	strcat(dir, "/keys");
	CHECK_EQ(keys_generate(dir, "t1", err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_EQ(file_mode(dir), 0700);
	CHECK_EQ(file_mode(kpath("t1", ".sign.key")), 0600);
	CHECK_EQ(file_mode(kpath("t1", ".sign.pub")), 0644);
	CHECK_EQ(file_mode(kpath("t1", ".tls.key")), 0600);
	CHECK_EQ(file_mode(kpath("t1", ".tls.crt")), 0644);
	CHECK_EQ(count_entries(dir), 4); /* no temporary files left */

	/* The TLS key is SEC1, the form mbedTLS 2.28 surely reads. */
	FILE *f = fopen(kpath("t1", ".tls.key"), "r");
	char line[128] = "";
	CHECK(f && fgets(line, sizeof(line), f));
	CHECK_STR(line, "-----BEGIN EC PRIVATE KEY-----\n");
	if (f)
		fclose(f);

	/* Refuses to overwrite, and then writes nothing. */
	err[0] = 0;
	CHECK_EQ(keys_generate(dir, "t1", err, sizeof(err)), -EEXIST);
	CHECK(contains(err, "t1.sign.key"));
	CHECK_EQ(keys_generate(dir, "t2", err, sizeof(err)), 0);
	CHECK_EQ(unlink(kpath("t2", ".tls.crt")), 0);
	err[0] = 0;
	CHECK_EQ(keys_generate(dir, "t2", err, sizeof(err)), -EEXIST);
	CHECK(contains(err, "already exists"));
	CHECK_EQ(file_mode(kpath("t2", ".tls.crt")), -1);
	CHECK_EQ(count_entries(dir), 7);
	/* A dangling symlink counts as an existing file. */
	CHECK_EQ(symlink("/nonexistent", kpath("t3", ".tls.crt")), 0);
	CHECK_EQ(keys_generate(dir, "t3", err, sizeof(err)), -EEXIST);
	CHECK_EQ(count_entries(dir), 8);

	/* Ids: [a-z0-9-]{1,32}. */
	const char *bad[] = { "", "T1", "a_b", "a.b", "a/b", "../x", "a b",
			      "abcdefghijklmnopqrstuvwxyz0123456" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(keys_generate(dir, bad[i], err, sizeof(err)), IL_EFIELD);
	CHECK_EQ(count_entries(dir), 8);
	CHECK_EQ(keys_generate(dir, "abcdefghijklmnopqrstuvwxyz-01234", err, sizeof(err)), 0);
	CHECK_EQ(count_entries(dir), 12);
}

static void test_sign_verify(void)
{
	char err[512];
	EVP_PKEY *key = NULL, *pub = NULL, *pub2 = NULL, *tls = NULL;
	CHECK_EQ(keys_load_private(kpath("t1", ".sign.key"), &key, err, sizeof(err)), 0);
	CHECK_EQ(keys_load_public(kpath("t1", ".sign.pub"), &pub, err, sizeof(err)), 0);
	CHECK_EQ(keys_load_public(kpath("t2", ".sign.pub"), &pub2, err, sizeof(err)), 0);
	CHECK_EQ(keys_load_private(kpath("t1", ".tls.key"), &tls, err, sizeof(err)), 0);
	if (!key || !pub || !pub2 || !tls)
		goto out;
	CHECK_EQ(EVP_PKEY_get_id(key), EVP_PKEY_ED25519);
	CHECK(EVP_PKEY_is_a(tls, "EC"));

	uint8_t msg[] = "list=incidents tlp=amber: a short message";
	size_t mlen = sizeof(msg) - 1;
	uint8_t sig[IL_ED25519_SIG_LEN];
	CHECK_EQ(crypto_sign(key, IL_CTX_MESSAGE, msg, mlen, sig), 0);
	CHECK_EQ(crypto_verify(pub, IL_CTX_MESSAGE, msg, mlen, sig, sizeof(sig)), 0);
	/* The private key verifies too (it holds the public half). */
	CHECK_EQ(crypto_verify(key, IL_CTX_MESSAGE, msg, mlen, sig, sizeof(sig)), 0);

	int bad_data = 0, bad_sig = 0;
	for (size_t i = 0; i < mlen; i++) {
		msg[i] ^= 0x01;
		if (crypto_verify(pub, IL_CTX_MESSAGE, msg, mlen, sig, sizeof(sig)) == IL_EBADSIG)
			bad_data++;
		msg[i] ^= 0x01;
	}
	CHECK_EQ(bad_data, mlen);
	for (size_t i = 0; i < sizeof(sig); i++) {
		sig[i] ^= 0x80;
		if (crypto_verify(pub, IL_CTX_MESSAGE, msg, mlen, sig, sizeof(sig)) == IL_EBADSIG)
			bad_sig++;
		sig[i] ^= 0x80;
	}
	CHECK_EQ(bad_sig, sizeof(sig));
	CHECK_EQ(crypto_verify(pub, IL_CTX_MESSAGE, msg, mlen, sig, sizeof(sig)), 0);
	CHECK_EQ(crypto_verify(pub, IL_CTX_MESSAGE, msg, mlen - 1, sig, sizeof(sig)), IL_EBADSIG);
	CHECK_EQ(crypto_verify(pub, IL_CTX_MESSAGE, msg, mlen, sig, sizeof(sig) - 1), IL_EBADSIG);
	CHECK_EQ(crypto_verify(pub2, IL_CTX_MESSAGE, msg, mlen, sig, sizeof(sig)), IL_EBADSIG);
	CHECK_EQ(crypto_verify(pub, IL_CTX_REQUEST, msg, mlen, sig, sizeof(sig)), IL_EBADSIG);
	CHECK_EQ(crypto_sign(key, IL_CTX_REQUEST, msg, mlen, sig), 0);
	CHECK_EQ(crypto_verify(pub, IL_CTX_REQUEST, msg, mlen, sig, sizeof(sig)), 0);
	CHECK_EQ(crypto_verify(pub, IL_CTX_MESSAGE, msg, mlen, sig, sizeof(sig)), IL_EBADSIG);

	/* Empty data, and data past the 4 KiB stack buffer. */
	CHECK_EQ(crypto_sign(key, IL_CTX_MESSAGE, NULL, 0, sig), 0);
	CHECK_EQ(crypto_verify(pub, IL_CTX_MESSAGE, NULL, 0, sig, sizeof(sig)), 0);
	static uint8_t big[100000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	CHECK_EQ(crypto_sign(key, IL_CTX_MESSAGE, big, sizeof(big), sig), 0);
	CHECK_EQ(crypto_verify(pub, IL_CTX_MESSAGE, big, sizeof(big), sig, sizeof(sig)), 0);
	big[sizeof(big) - 1] ^= 1;
	CHECK_EQ(crypto_verify(pub, IL_CTX_MESSAGE, big, sizeof(big), sig, sizeof(sig)),
		 IL_EBADSIG);

	/* Not an Ed25519 key. */
	CHECK_EQ(crypto_sign(tls, IL_CTX_MESSAGE, msg, mlen, sig), IL_EKEY);
	CHECK_EQ(crypto_verify(tls, IL_CTX_MESSAGE, msg, mlen, sig, sizeof(sig)), IL_EKEY);
	CHECK_EQ(crypto_verify(NULL, IL_CTX_MESSAGE, msg, mlen, sig, sizeof(sig)), IL_EKEY);

	/* The SHA-256 test vector of FIPS 180-2 ("abc"). */
	uint8_t md[IL_SHA256_LEN];
	static const uint8_t abc[IL_SHA256_LEN] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
		0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
		0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad };
	crypto_sha256("abc", 3, md);
	CHECK(memcmp(md, abc, sizeof(md)) == 0);
out:
	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(pub2);
	EVP_PKEY_free(tls);
}

static void test_load_errors(void)
{
	char err[512] = "";
	EVP_PKEY *pk = NULL;
	char loose[512];
	snprintf(loose, sizeof(loose), "%s", kpath("loose", ".key"));

	CHECK_EQ(copy_with_mode(kpath("t1", ".sign.key"), loose, 0640), 0);
	CHECK_EQ(keys_load_private(loose, &pk, err, sizeof(err)), IL_EKEY);
	CHECK(pk == NULL);
	CHECK(contains(err, "readable by group or others (chmod 600 "));
	CHECK(contains(err, loose));
	CHECK_EQ(chmod(loose, 0604), 0);
	CHECK_EQ(keys_load_private(loose, &pk, err, sizeof(err)), IL_EKEY);
	CHECK_EQ(chmod(loose, 0620), 0);
	CHECK_EQ(keys_load_private(loose, &pk, err, sizeof(err)), IL_EKEY);
	CHECK_EQ(chmod(loose, 0400), 0);
	CHECK_EQ(keys_load_private(loose, &pk, err, sizeof(err)), 0);
	EVP_PKEY_free(pk);
	pk = NULL;
	unlink(loose);

	CHECK_EQ(keys_load_private(kpath("none", ".key"), &pk, err, sizeof(err)), -ENOENT);
	CHECK_EQ(keys_load_private(dir, &pk, err, sizeof(err)), -EISDIR);
	/* A public key or certificate is not a private key. */
	/* (mode 0644: refused on permissions before parsing) */
	CHECK_EQ(keys_load_private(kpath("t1", ".tls.crt"), &pk, err, sizeof(err)), IL_EKEY);
	CHECK_EQ(copy_with_mode(kpath("t1", ".sign.pub"), loose, 0600), 0);
	CHECK_EQ(keys_load_private(loose, &pk, err, sizeof(err)), IL_EKEY);
	CHECK(contains(err, "not a PEM private key"));

	/* An encrypted key is refused without asking for a passphrase. */
	EVP_PKEY *sign = NULL;
	CHECK_EQ(keys_load_private(kpath("t1", ".sign.key"), &sign, err, sizeof(err)), 0);
	unlink(loose);
	int fd = open(loose, O_WRONLY | O_CREAT | O_EXCL, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	CHECK(f != NULL);
	if (f && sign) {
		CHECK(PEM_write_PKCS8PrivateKey(f, sign, EVP_aes_256_cbc(), "pw", 2, NULL,
						NULL) == 1);
		fclose(f);
		CHECK_EQ(keys_load_private(loose, &pk, err, sizeof(err)), IL_EKEY);
		CHECK(contains(err, "encrypted"));
		CHECK_EQ(keys_fingerprint(loose, (char[200]){ 0 }, err, sizeof(err)), IL_EKEY);
	} else if (f) {
		fclose(f);
	}
	EVP_PKEY_free(sign);
	unlink(loose);

	/* keys_load_public wants Ed25519. */
	X509 *x = read_cert(kpath("t1", ".tls.crt"));
	f = fopen(loose, "w");
	CHECK(x && f);
	if (x && f)
		CHECK(PEM_write_PUBKEY(f, X509_get0_pubkey(x)) == 1);
	if (f)
		fclose(f);
	X509_free(x);
	CHECK_EQ(keys_load_public(loose, &pk, err, sizeof(err)), IL_EKEY);
	CHECK(contains(err, "Ed25519"));
	CHECK(pk == NULL);
	CHECK_EQ(keys_load_public(kpath("t1", ".tls.crt"), &pk, err, sizeof(err)), IL_EKEY);
	CHECK_EQ(keys_load_public(kpath("none", ".pub"), &pk, err, sizeof(err)), -ENOENT);
	CHECK(contains(err, "none.pub"));

	CHECK_EQ(keys_check_cert(kpath("t1", ".sign.pub"), NULL, err, sizeof(err)), IL_EKEY);
	CHECK_EQ(keys_check_cert(kpath("none", ".crt"), NULL, err, sizeof(err)), -ENOENT);
	f = fopen(loose, "w");
	if (f) {
		fputs("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", f);
		fclose(f);
	}
	CHECK_EQ(keys_check_cert(loose, NULL, err, sizeof(err)), IL_EKEY);
	CHECK_EQ(keys_fingerprint(loose, (char[200]){ 0 }, err, sizeof(err)), IL_EKEY);
	/* An Ed25519 certificate: OpenSSL takes it, the peer channels' mbedTLS
	 * would not, so the check refuses it by name. */
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	X509 *ec = X509_new();
	CHECK(ed && ec);
	if (ed && ec) {
		X509_set_version(ec, 2);
		ASN1_INTEGER_set(X509_get_serialNumber(ec), 1);
		X509_gmtime_adj(X509_getm_notBefore(ec), 0);
		X509_gmtime_adj(X509_getm_notAfter(ec), 86400);
		X509_NAME_add_entry_by_txt(X509_get_subject_name(ec), "CN", MBSTRING_ASC,
					   (const unsigned char *)"ed", -1, -1, 0);
		X509_set_issuer_name(ec, X509_get_subject_name(ec));
		X509_set_pubkey(ec, ed);
		CHECK(X509_sign(ec, ed, NULL) > 0);
		f = fopen(loose, "w");
		CHECK(f && PEM_write_X509(f, ec) == 1);
		if (f)
			fclose(f);
		CHECK_EQ(keys_check_cert(loose, NULL, err, sizeof(err)), IL_EKEY);
		CHECK(contains(err, "ED25519") && contains(err, "RSA or ECDSA"));
	}
	X509_free(ec);
	EVP_PKEY_free(ed);
	CHECK_EQ(keys_check_cert(kpath("t1", ".tls.crt"), NULL, err, sizeof(err)), 0);
	CHECK_EQ(keys_fingerprint(kpath("none", ".crt"), (char[200]){ 0 }, err, sizeof(err)),
		 -ENOENT);
	unlink(loose);
	/* Nothing left on OpenSSL's error queue for the next caller. */
	CHECK_EQ(ERR_peek_error(), 0);
}

static void test_fingerprint(void)
{
	char err[512], got[200], want[200];
	uint8_t *der = NULL;

	X509 *x = read_cert(kpath("t1", ".tls.crt"));
	CHECK(x != NULL);
	if (!x)
		return;
	int len = i2d_X509(x, &der);
	CHECK(len > 0);
	expected_fpr(der, len, want);
	OPENSSL_free(der);
	der = NULL;
	CHECK_EQ(keys_fingerprint(kpath("t1", ".tls.crt"), got, err, sizeof(err)), 0);
	CHECK_STR(got, want);
	CHECK_EQ(strlen(got), 7 + 32 * 3 - 1);
	CHECK(strncmp(got, "SHA256:", 7) == 0);

	/* The TLS private key's fingerprint is its public half's (SPKI). */
	len = i2d_PUBKEY(X509_get0_pubkey(x), &der);
	expected_fpr(der, len, want);
	OPENSSL_free(der);
	der = NULL;
	CHECK_EQ(keys_fingerprint(kpath("t1", ".tls.key"), got, err, sizeof(err)), 0);
	CHECK_STR(got, want);
	X509_free(x);

	EVP_PKEY *pub = NULL;
	CHECK_EQ(keys_load_public(kpath("t1", ".sign.pub"), &pub, err, sizeof(err)), 0);
	if (pub) {
		len = i2d_PUBKEY(pub, &der);
		expected_fpr(der, len, want);
		OPENSSL_free(der);
		EVP_PKEY_free(pub);
	}
	CHECK_EQ(keys_fingerprint(kpath("t1", ".sign.pub"), got, err, sizeof(err)), 0);
	CHECK_STR(got, want);
	CHECK_EQ(keys_fingerprint(kpath("t1", ".sign.key"), got, err, sizeof(err)), 0);
	CHECK_STR(got, want);
	CHECK_EQ(keys_fingerprint(kpath("t2", ".sign.pub"), want, err, sizeof(err)), 0);
	CHECK(strcmp(got, want) != 0);
}

static void test_cert(void)
{
	char err[512], cn[64] = "";
	X509 *x = read_cert(kpath("t1", ".tls.crt"));
	X509 *x2 = read_cert(kpath("abcdefghijklmnopqrstuvwxyz-01234", ".tls.crt"));
	EVP_PKEY *tls = NULL;
	X509_STORE *store = NULL;
	X509_STORE_CTX *vctx = NULL;

	CHECK(x && x2);
	if (!x || !x2)
		goto out;
	CHECK_EQ(X509_get_version(x), X509_VERSION_3);
	CHECK(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
					sizeof(cn)) > 0);
	CHECK_STR(cn, "t1");
	CHECK_EQ(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
	CHECK_EQ(X509_check_issued(x, x), X509_V_OK);
	CHECK_EQ(X509_verify(x, X509_get0_pubkey(x)), 1);
	CHECK_EQ(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	CHECK_EQ(X509_check_host(x, "t1", 0, 0, NULL), 1);
	CHECK_EQ(X509_check_host(x, "t2", 0, 0, NULL), 0);
	CHECK(X509_check_ca(x) >= 1);
	CHECK_EQ(X509_get_extension_flags(x) & EXFLAG_CRITICAL, 0); /* none unknown */
	uint32_t ku = X509_get_key_usage(x);
	CHECK((ku & (KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN)) ==
	      (KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN));
	uint32_t xku = X509_get_extended_key_usage(x);
	CHECK((xku & (XKU_SSL_SERVER | XKU_SSL_CLIENT)) == (XKU_SSL_SERVER | XKU_SSL_CLIENT));

	EVP_PKEY *cpk = X509_get0_pubkey(x);
	char group[64] = "";
	CHECK(EVP_PKEY_is_a(cpk, "EC"));
	CHECK(EVP_PKEY_get_group_name(cpk, group, sizeof(group), NULL) == 1);
	CHECK_STR(group, "prime256v1");
	CHECK_EQ(keys_load_private(kpath("t1", ".tls.key"), &tls, err, sizeof(err)), 0);
	CHECK(tls && X509_check_private_key(x, tls) == 1);

	/* Random, positive serials. */
	const ASN1_INTEGER *s1 = X509_get0_serialNumber(x), *s2 = X509_get0_serialNumber(x2);
	CHECK(ASN1_INTEGER_cmp(s1, s2) != 0);
	CHECK_EQ(s1->type, V_ASN1_INTEGER); /* not V_ASN1_NEG_INTEGER */

	/* Validity: an hour back, ten years ahead. */
	time_t now = time(NULL);
	int64_t not_after = 0;
	CHECK_EQ(keys_check_cert(kpath("t1", ".tls.crt"), &not_after, err, sizeof(err)), 0);
	CHECK(not_after >= (int64_t)now + 3650LL * 86400 - 60);
	CHECK(not_after <= (int64_t)now + 3653LL * 86400 + 60);
	CHECK(X509_cmp_time(X509_get0_notBefore(x), &(time_t){ now - 3500 }) < 0);
	CHECK(X509_cmp_time(X509_get0_notBefore(x), &(time_t){ now - 3700 }) > 0);

	/* The certificate is its own trust anchor, as nng pins it: verify it
	 * with itself as the only CA, strictly, for both TLS roles. */
	store = X509_STORE_new();
	vctx = X509_STORE_CTX_new();
	CHECK(store && vctx && X509_STORE_add_cert(store, x) == 1);
	int purposes[] = { X509_PURPOSE_SSL_SERVER, X509_PURPOSE_SSL_CLIENT };
	for (int i = 0; i < 2 && store && vctx; i++) {
		CHECK(X509_STORE_CTX_init(vctx, store, x, NULL) == 1);
		X509_STORE_CTX_set_purpose(vctx, purposes[i]);
		X509_STORE_CTX_set_flags(vctx, X509_V_FLAG_X509_STRICT);
		CHECK_EQ(X509_verify_cert(vctx), 1);
		CHECK_EQ(X509_STORE_CTX_get_error(vctx), X509_V_OK);
		X509_STORE_CTX_cleanup(vctx);
	}
	/* And another relay's certificate does not pass for it. */
	if (store && vctx) {
		CHECK(X509_STORE_CTX_init(vctx, store, x2, NULL) == 1);
		CHECK(X509_verify_cert(vctx) != 1);
		X509_STORE_CTX_cleanup(vctx);
	}
out:
	ERR_clear_error();
	X509_STORE_CTX_free(vctx);
	X509_STORE_free(store);
	EVP_PKEY_free(tls);
	X509_free(x);
	X509_free(x2);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/*
 * crypto.c keeps a few initialised contexts per thread, by key: more keys
 * than it keeps, interleaved, from two threads at once, must give the same
 * answers as fresh contexts, good and bad alike.
 */
#define CACHE_KEYS 7

struct cache_run {
	EVP_PKEY **keys;
	int wrong;
};

static void *cache_worker(void *arg)
{
	struct cache_run *cr = arg;
	uint8_t sig[IL_ED25519_SIG_LEN], msg[64];
	for (int round = 0; round < 40; round++) {
		for (int k = 0; k < CACHE_KEYS; k++) {
			memset(msg, round * CACHE_KEYS + k, sizeof(msg));
			if (crypto_sign(cr->keys[k], IL_CTX_MESSAGE, msg, sizeof(msg), sig) != 0)
				cr->wrong++;
			for (int v = 0; v < CACHE_KEYS; v++) {
				int want = v == k ? 0 : IL_EBADSIG;
				if (crypto_verify(cr->keys[v], IL_CTX_MESSAGE, msg, sizeof(msg), sig,
						  sizeof(sig)) != want)
					cr->wrong++;
			}
		}
	}
	return NULL;
}

static void test_ctx_cache(void)
{
	EVP_PKEY *keys[CACHE_KEYS] = { 0 };
	for (int k = 0; k < CACHE_KEYS; k++) {
		EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
		CHECK(pc && EVP_PKEY_keygen_init(pc) == 1 && EVP_PKEY_keygen(pc, &keys[k]) == 1);
		EVP_PKEY_CTX_free(pc);
		if (!keys[k])
			goto out;
	}
	struct cache_run main_run = { .keys = keys }, thread_run = { .keys = keys };
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, cache_worker, &thread_run), 0);
	cache_worker(&main_run);
	pthread_join(th, NULL);
	CHECK_EQ(main_run.wrong, 0);
	CHECK_EQ(thread_run.wrong, 0);

	/* A key freed while a context for it is cached: the next key, maybe at
	 * the same address, gets its own context and answers. */
	uint8_t sig[IL_ED25519_SIG_LEN], m[] = "freed key";
	CHECK_EQ(crypto_sign(keys[0], IL_CTX_MESSAGE, m, sizeof(m), sig), 0);
	EVP_PKEY_free(keys[0]);
	keys[0] = NULL;
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	CHECK(pc && EVP_PKEY_keygen_init(pc) == 1 && EVP_PKEY_keygen(pc, &keys[0]) == 1);
	EVP_PKEY_CTX_free(pc);
	if (keys[0]) {
		CHECK_EQ(crypto_verify(keys[0], IL_CTX_MESSAGE, m, sizeof(m), sig, sizeof(sig)),
			 IL_EBADSIG);
		CHECK_EQ(crypto_sign(keys[0], IL_CTX_MESSAGE, m, sizeof(m), sig), 0);
		CHECK_EQ(crypto_verify(keys[0], IL_CTX_MESSAGE, m, sizeof(m), sig, sizeof(sig)), 0);
	}

	/* Two parts hash as one. */
	uint8_t one[IL_SHA256_LEN], two[IL_SHA256_LEN];
	static const char text[] = "interlist: a message in two parts";
	crypto_sha256(text, sizeof(text) - 1, one);
	crypto_sha256_parts(text, 10, text + 10, sizeof(text) - 11, two);
	CHECK(memcmp(one, two, sizeof(one)) == 0);
out:
	for (int k = 0; k < CACHE_KEYS; k++)
		EVP_PKEY_free(keys[k]);
}

int main(void)
{
	/* Fixed umask so the modes checked are the ones keys.c asks for. */
	umask(022);
	snprintf(dir, sizeof(dir), "%s", check_tmpdir());
	char top[256];
	snprintf(top, sizeof(top), "%s", dir);

	test_generate();
	test_sign_verify();
	test_ctx_cache();
	test_load_errors();
	test_fingerprint();
	test_cert();

	nftw(top, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return check_done("test_crypto");
}
