/*
 * keys.c — key and certificate files: load, check, fingerprint, generate.
 *
 * Everything goes through OpenSSL 3's library, never the openssl program.
 * The TLS pair written here is read by nng's mbedTLS 2.28 engine, which
 * parses less than OpenSSL does: keys_generate() keeps to what it reads
 * (SEC1 EC key on a named curve, uncompressed points, a v3 certificate whose
 * only other extensions are non-critical).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "il/crypto.h"
#include "il/error.h"
#include "il/util.h"

/* Key and certificate files are a few KiB; a file this big is not one. */
#define KEYS_FILE_MAX (256 * 1024)

/* Relay ids: [a-z0-9-]{1,32}, the rule config_valid_id() also applies. Kept
 * here so keys does not depend on the config module. */
#define KEYS_ID_MAX 32

/* 3652 days = ten calendar years, counting their two or three leap days. */
#define KEYS_CERT_DAYS 3652
/* Back-date notBefore by an hour so a peer whose clock is a little behind
 * does not reject a certificate made a minute ago. */
#define KEYS_CERT_SKEW_S 3600

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The reason for OpenSSL's latest error, then an empty error queue: the
 * queue is per thread, and a stale entry would mislead the next caller. */
static const char *ossl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	ERR_clear_error();
	return r ? r : "unknown reason";
}

/* Passphrase callback that never asks: OpenSSL's default one would prompt on
 * the terminal, and the daemon starts unattended. u points to a flag that
 * tells the caller the key was encrypted. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	if (u)
		*(int *)u = 1;
	return -1;
}

/*
 * Read a key or certificate file whole. The mode is checked with fstat on the
 * descriptor we read from, so a chmod or a swapped path between the check
 * and the read cannot slip a looser file past it. private_key: refuse a file
 * group or others may access, as ssh does.
 */
static int read_pem_file(const char *path, int private_key, uint8_t **buf, size_t *len,
			 char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		set_err(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	int r;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		set_err(err, errlen, "%s: %s", path, strerror(-r));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		r = -EISDIR;
		set_err(err, errlen, "%s: is a folder", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		r = IL_EKEY;
		set_err(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	if (private_key && (st.st_mode & 077)) {
		r = IL_EKEY;
		set_err(err, errlen, "%s: readable by group or others (chmod 600 %s)", path, path);
		goto fail;
	}
	r = util_read_fd(fd, KEYS_FILE_MAX, buf, len);
	if (r == IL_ETOOLARGE)
		set_err(err, errlen, "%s: over %d KiB, not a key or certificate", path,
			KEYS_FILE_MAX / 1024);
	else if (r < 0)
		set_err(err, errlen, "%s: %s", path, il_strerror(r));
fail:
	close(fd);
	return r;
}

/* Release a buffer that may hold a private key. */
static void free_secret(uint8_t *buf, size_t len)
{
	if (!buf)
		return;
	OPENSSL_cleanse(buf, len);
	free(buf);
}

/* A read-only BIO over len bytes of buf (len is at most KEYS_FILE_MAX). */
static BIO *mem_bio(const uint8_t *buf, size_t len)
{
	return BIO_new_mem_buf(buf, (int)len);
}

/* Read a PEM file (secret: the bytes are wiped when freed) and wrap it in a
 * read-only BIO. On success the caller frees *bio, then *buf. */
static int open_pem(const char *path, int secret, uint8_t **buf, size_t *len, BIO **bio,
		    char *err, size_t errlen)
{
	int r = read_pem_file(path, secret, buf, len, err, errlen);
	if (r < 0)
		return r;
	*bio = mem_bio(*buf, *len);
	if (!*bio) {
		if (secret)
			free_secret(*buf, *len);
		else
			free(*buf);
		*buf = NULL;
		set_err(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	return 0;
}

int keys_load_private(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	EVP_PKEY *pk = NULL;
	int encrypted = 0;
	int r = open_pem(path, 1, &buf, &len, &bio, err, errlen);
	if (r < 0)
		return r;
	pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, &encrypted);
	if (!pk) {
		r = IL_EKEY;
		if (encrypted)
			set_err(err, errlen, "%s: encrypted private key (the relay needs it "
				"without a passphrase)", path);
		else
			set_err(err, errlen, "%s: not a PEM private key (%s)", path,
				ossl_reason());
		goto fail;
	}
	*out = pk;
	r = 0;
fail:
	ERR_clear_error();
	BIO_free(bio);
	free_secret(buf, len);
	return r;
}

int keys_load_public(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	EVP_PKEY *pk = NULL;
	int r = open_pem(path, 0, &buf, &len, &bio, err, errlen);
	if (r < 0)
		return r;
	pk = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
	if (!pk) {
		r = IL_EKEY;
		set_err(err, errlen, "%s: not a PEM public key (%s)", path, ossl_reason());
		goto fail;
	}
	if (EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519) {
		r = IL_EKEY;
		const char *type = EVP_PKEY_get0_type_name(pk);
		set_err(err, errlen, "%s: %s public key, signing keys must be Ed25519", path,
			type ? type : "unknown");
		goto fail;
	}
	*out = pk;
	pk = NULL;
	r = 0;
fail:
	ERR_clear_error();
	EVP_PKEY_free(pk);
	BIO_free(bio);
	free(buf);
	return r;
}

int keys_check_cert(const char *path, int64_t *not_after, char *err, size_t errlen)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	X509 *x = NULL;
	int r = open_pem(path, 0, &buf, &len, &bio, err, errlen);
	if (r < 0)
		return r;
	x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
	if (!x) {
		r = IL_EKEY;
		set_err(err, errlen, "%s: not a PEM certificate (%s)", path, ossl_reason());
		goto fail;
	}
	/* The peer channel's TLS is mbedTLS 2 (under nng), which knows RSA and
	 * ECDSA certificates only. OpenSSL reads an Ed25519 one happily, and
	 * the daemon would fail later with mbedTLS's bare "Cryptographic error". */
	EVP_PKEY *pk = X509_get0_pubkey(x);
	int type = pk ? EVP_PKEY_get_id(pk) : NID_undef;
	if (type != EVP_PKEY_RSA && type != EVP_PKEY_EC) {
		const char *name = pk ? EVP_PKEY_get0_type_name(pk) : NULL;
		r = IL_EKEY;
		set_err(err, errlen, "%s: the certificate's key is %s; the peer channels take RSA or "
			"ECDSA certificates only (interlistctl init makes ECDSA P-256 ones)", path,
			name ? name : "unreadable");
		goto fail;
	}
	if (not_after) {
		struct tm tm;
		if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1) {
			r = IL_EKEY;
			set_err(err, errlen, "%s: unreadable notAfter date", path);
			goto fail;
		}
		*not_after = (int64_t)timegm(&tm);
	}
	r = 0;
fail:
	ERR_clear_error();
	X509_free(x);
	BIO_free(bio);
	free(buf);
	return r;
}

/* "SHA256:AB:CD:..." of der, the form `openssl x509 -fingerprint -sha256`
 * prints (7 + 32 * 3 - 1 + 1 = 103 bytes with the NUL). */
static void format_fingerprint(const uint8_t *der, size_t len, char out[200])
{
	uint8_t md[IL_SHA256_LEN];
	crypto_sha256(der, len, md);
	char *p = out + sprintf(out, "SHA256:");
	for (size_t i = 0; i < sizeof(md); i++)
		p += sprintf(p, i ? ":%02X" : "%02X", md[i]);
}

/* What keys_fingerprint looks for, in this order. */
enum fpr_kind { FPR_CERT, FPR_PUBLIC, FPR_PRIVATE, FPR_KINDS };

/*
 * The DER to fingerprint if buf holds a PEM block of that kind: the whole
 * certificate, or the SubjectPublicKeyInfo of a public or private key.
 * Returns its length (*der then OPENSSL_malloc'd), 0 when there is no such
 * block, or a negative code. Each PEM reader skips blocks of other kinds, so
 * a combined key + certificate file gives the certificate's fingerprint.
 */
static int fpr_der(const uint8_t *buf, size_t len, enum fpr_kind kind, uint8_t **der,
		   int *encrypted)
{
	BIO *bio = mem_bio(buf, len);
	int n = 0;
	if (!bio)
		return -ENOMEM;
	/* no_passphrase for every reader: OpenSSL 3's decoders also try an
	 * encrypted private key block when asked for a certificate or public
	 * key, and would otherwise prompt on the terminal. */
	if (kind == FPR_CERT) {
		X509 *x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
		if (x && (n = i2d_X509(x, der)) <= 0)
			n = IL_ECRYPTO;
		X509_free(x);
	} else {
		EVP_PKEY *pk = kind == FPR_PUBLIC
				       ? PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL)
				       : PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, encrypted);
		if (pk && (n = i2d_PUBKEY(pk, der)) <= 0)
			n = IL_ECRYPTO;
		EVP_PKEY_free(pk);
	}
	ERR_clear_error();
	BIO_free(bio);
	return n;
}

int keys_fingerprint(const char *path, char out[200], char *err, size_t errlen)
{
	uint8_t *buf = NULL, *der = NULL;
	size_t len = 0;
	int n = 0, encrypted = 0;
	int r = read_pem_file(path, 0, &buf, &len, err, errlen);
	if (r < 0)
		return r;
	for (int k = 0; k < FPR_KINDS && n == 0; k++)
		n = fpr_der(buf, len, (enum fpr_kind)k, &der, &encrypted);
	if (n > 0) {
		format_fingerprint(der, (size_t)n, out);
		r = 0;
	} else if (n < 0) {
		r = n;
		set_err(err, errlen, "%s: %s", path, il_strerror(r));
	} else {
		r = IL_EKEY;
		set_err(err, errlen, "%s: %s", path,
			encrypted ? "encrypted private key"
				  : "no PEM certificate, public or private key");
	}
	OPENSSL_free(der);
	free_secret(buf, len);
	return r;
}

/* ---- keys_generate ---------------------------------------------------- */

static int valid_id(const char *id)
{
	size_t n = strlen(id);
	if (n < 1 || n > KEYS_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return 1;
}

/* The four files of a relay, in the order they are published. */
enum { K_SIGN_KEY, K_SIGN_PUB, K_TLS_KEY, K_TLS_CRT, K_N };

static const struct {
	const char *suffix;
	mode_t mode;
	int secret;
} kfiles[K_N] = {
	[K_SIGN_KEY] = { ".sign.key", 0600, 1 },
	[K_SIGN_PUB] = { ".sign.pub", 0644, 0 },
	[K_TLS_KEY] = { ".tls.key", 0600, 1 },
	[K_TLS_CRT] = { ".tls.crt", 0644, 0 },
};

/* What became of each file, so a failure can take back exactly what this
 * call created and nothing else. */
enum kstate { KS_NONE, KS_TMP, KS_DONE };

struct kgen {
	char path[K_N][PATH_MAX];
	char tmp[K_N][PATH_MAX];
	BIO *pem[K_N];
	enum kstate state[K_N];
};

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	/* Issuer and subject are the same certificate: self-signed. */
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return IL_ECRYPTO;
	int ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : IL_ECRYPTO;
}

/*
 * A self-signed certificate for the TLS key. Each peer pins this certificate
 * as the only CA when it verifies us (nng's tls_config_ca_file), so it must
 * be a valid trust anchor for mbedTLS: critical CA:TRUE and keyCertSign.
 * SAN DNS:ID because mbedTLS matches the expected name against the SAN when
 * one is present, and modern verifiers ignore the CN.
 */
static int make_cert(EVP_PKEY *key, const char *id, X509 **out)
{
	int r = IL_ECRYPTO;
	X509 *x = X509_new();
	BIGNUM *bn = NULL;
	uint8_t serial[16];
	char san[8 + KEYS_ID_MAX];

	if (!x)
		return -ENOMEM;
	/* RFC 5280: a positive serial of at most 20 octets; 126 random bits
	 * with the top bit clear (positive) and the next one set (so the
	 * length is fixed and the value is never zero). */
	if ((r = util_random(serial, sizeof(serial))) < 0)
		goto fail;
	r = IL_ECRYPTO;
	serial[0] = (uint8_t)((serial[0] & 0x3f) | 0x40);
	if (!(bn = BN_bin2bn(serial, sizeof(serial), NULL)) ||
	    !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		goto fail;

	X509_NAME *name = X509_get_subject_name(x);
	if (!X509_set_version(x, X509_VERSION_3) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -KEYS_CERT_SKEW_S) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), KEYS_CERT_DAYS, 0, NULL) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)id,
					-1, -1, 0) ||
	    !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, key))
		goto fail;

	snprintf(san, sizeof(san), "DNS:%s", id);
	/* subjectKeyIdentifier before authorityKeyIdentifier: the latter copies
	 * the issuer's (our own) key identifier. */
	if ((r = add_ext(x, NID_basic_constraints, "critical,CA:TRUE")) < 0 ||
	    (r = add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign")) < 0 ||
	    (r = add_ext(x, NID_ext_key_usage, "serverAuth,clientAuth")) < 0 ||
	    (r = add_ext(x, NID_subject_alt_name, san)) < 0 ||
	    (r = add_ext(x, NID_subject_key_identifier, "hash")) < 0 ||
	    (r = add_ext(x, NID_authority_key_identifier, "keyid:always")) < 0)
		goto fail;
	r = IL_ECRYPTO;
	if (X509_sign(x, key, EVP_sha256()) <= 0)
		goto fail;
	*out = x;
	x = NULL;
	r = 0;
fail:
	BN_free(bn);
	X509_free(x);
	return r;
}

/* Make both key pairs and the certificate, PEM-encoded in memory. Private
 * keys go to secure-heap BIOs, which clear their memory when freed. */
static int encode_all(struct kgen *g, const char *id, char *err, size_t errlen)
{
	int r = IL_ECRYPTO;
	EVP_PKEY *sign = NULL, *tls = NULL;
	X509 *crt = NULL;

	for (int i = 0; i < K_N; i++) {
		g->pem[i] = BIO_new(kfiles[i].secret ? BIO_s_secmem() : BIO_s_mem());
		if (!g->pem[i]) {
			r = -ENOMEM;
			goto fail;
		}
	}
	if (!(sign = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) ||
	    !(tls = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")))
		goto fail;
	if ((r = make_cert(tls, id, &crt)) < 0)
		goto fail;
	r = IL_ECRYPTO;
	/* Signing key: PKCS#8 (only OpenSSL reads it). TLS key: SEC1 "EC
	 * PRIVATE KEY", the form mbedTLS has always parsed; OpenSSL 3 writes
	 * named-curve parameters and uncompressed points, which mbedTLS 2.28
	 * needs (it has no compressed-point support). */
	if (!PEM_write_bio_PrivateKey(g->pem[K_SIGN_KEY], sign, NULL, NULL, 0, NULL, NULL) ||
	    !PEM_write_bio_PUBKEY(g->pem[K_SIGN_PUB], sign) ||
	    !PEM_write_bio_PrivateKey_traditional(g->pem[K_TLS_KEY], tls, NULL, NULL, 0, NULL,
						  NULL) ||
	    !PEM_write_bio_X509(g->pem[K_TLS_CRT], crt))
		goto fail;
	r = 0;
fail:
	if (r < 0)
		set_err(err, errlen, "cannot generate keys: %s",
			r == IL_ECRYPTO ? ossl_reason() : il_strerror(r));
	ERR_clear_error();
	X509_free(crt);
	EVP_PKEY_free(tls);
	EVP_PKEY_free(sign);
	return r;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write file i under a temporary name in the same folder, created with its
 * final mode (a private key is never readable by others, not even briefly)
 * and synced, so the rename publishes a complete file. */
static int write_tmp(struct kgen *g, int i, const char *dir, const char *id, char *err,
		     size_t errlen)
{
	char *data = NULL;
	long len = BIO_get_mem_data(g->pem[i], &data);
	int fd = -1, r = -EEXIST;

	/* A leftover temporary name from a crash is possible; try a few. */
	for (int tries = 0; tries < 8 && fd < 0; tries++) {
		uint32_t rnd;
		if ((r = util_random(&rnd, sizeof(rnd))) < 0)
			break;
		if (snprintf(g->tmp[i], PATH_MAX, "%s/.%s%s.%08x", dir, id, kfiles[i].suffix,
			     rnd) >= PATH_MAX) {
			r = -ENAMETOOLONG;
			break;
		}
		fd = open(g->tmp[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			  kfiles[i].mode);
		r = fd < 0 ? -errno : 0;
		if (r < 0 && r != -EEXIST)
			break;
	}
	if (fd < 0) {
		set_err(err, errlen, "cannot create %s: %s", g->tmp[i], il_strerror(r));
		return r;
	}
	g->state[i] = KS_TMP;
	r = write_all(fd, data, len > 0 ? (size_t)len : 0);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		set_err(err, errlen, "cannot write %s: %s", g->tmp[i], il_strerror(r));
	return r;
}

/* Move file i to its final name unless that name exists: rename with
 * RENAME_NOREPLACE, or link + unlink on file systems without it. Either
 * way an existing file is never replaced, even one that appeared after
 * keys_generate looked. */
static int publish(struct kgen *g, int i, char *err, size_t errlen)
{
	int r = 0;
	if (renameat2(AT_FDCWD, g->tmp[i], AT_FDCWD, g->path[i], RENAME_NOREPLACE) < 0) {
		r = -errno;
		if (r == -EINVAL || r == -ENOSYS || r == -EOPNOTSUPP)
			r = link(g->tmp[i], g->path[i]) < 0 ? -errno : 0;
		if (r == 0) {
			/* Both names now point at the file; the cleanup unlinks
			 * the temporary one. */
			g->state[i] = KS_DONE;
			unlink(g->tmp[i]);
			return 0;
		}
		if (r == -EEXIST)
			set_err(err, errlen, "%s appeared while keys were being written; "
				"nothing written", g->path[i]);
		else
			set_err(err, errlen, "cannot create %s: %s", g->path[i],
				il_strerror(r));
		return r;
	}
	g->state[i] = KS_DONE;
	return 0;
}

int keys_generate(const char *dir, const char *id, char *err, size_t errlen)
{
	struct kgen *g = calloc(1, sizeof(*g));
	int r;

	if (!g) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (!valid_id(id)) {
		r = IL_EFIELD;
		set_err(err, errlen, "invalid id '%s': use 1 to %d of a-z, 0-9 and '-'", id,
			KEYS_ID_MAX);
		goto fail;
	}
	for (int i = 0; i < K_N; i++) {
		if (snprintf(g->path[i], PATH_MAX, "%s/%s%s", dir, id, kfiles[i].suffix) >=
		    PATH_MAX) {
			r = -ENAMETOOLONG;
			set_err(err, errlen, "%s: path too long", dir);
			goto fail;
		}
	}
	if ((r = util_mkdirs(dir, 0700)) < 0) {
		set_err(err, errlen, "cannot create %s: %s", dir, il_strerror(r));
		goto fail;
	}
	/* Check all four before writing any: an existing key is someone's
	 * identity, and a half-replaced set would be worse than none. lstat,
	 * so a dangling symlink counts as existing too. */
	for (int i = 0; i < K_N; i++) {
		struct stat st;
		if (lstat(g->path[i], &st) == 0) {
			r = -EEXIST;
			set_err(err, errlen, "%s already exists; nothing written", g->path[i]);
			goto fail;
		}
		if (errno != ENOENT) {
			r = -errno;
			set_err(err, errlen, "%s: %s", g->path[i], il_strerror(r));
			goto fail;
		}
	}
	if ((r = encode_all(g, id, err, errlen)) < 0)
		goto fail;
	for (int i = 0; i < K_N; i++)
		if ((r = write_tmp(g, i, dir, id, err, errlen)) < 0)
			goto fail;
	for (int i = 0; i < K_N; i++)
		if ((r = publish(g, i, err, errlen)) < 0)
			goto fail;
	/* The renames are durable only once the folder itself is synced. */
	if ((r = util_fsync_dir(dir)) < 0) {
		set_err(err, errlen, "cannot sync %s: %s", dir, il_strerror(r));
		goto fail;
	}
	r = 0;
fail:
	for (int i = 0; i < K_N; i++) {
		if (r < 0 && g->state[i] == KS_DONE)
			unlink(g->path[i]);
		if (g->state[i] == KS_TMP)
			unlink(g->tmp[i]);
		BIO_free(g->pem[i]);
	}
	free(g);
	return r;
}
