/*
 * crypto.h — signatures, hashes and key files (OpenSSL 3).
 *
 * Keys are OpenSSL EVP_PKEY objects; whoever loads one owns it and frees it
 * with EVP_PKEY_free(). Signing and verifying are thread-safe for a shared
 * key (OpenSSL 3 EVP_PKEY is read-only once loaded), so worker threads may
 * verify with keys the loop thread loaded. Each thread keeps a few
 * initialised contexts by key (crypto.c), freed when the thread exits.
 */
#ifndef IL_CRYPTO_H
#define IL_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/types.h>

#define IL_SHA256_LEN 32
#define IL_ED25519_SIG_LEN 64
#define IL_SIG_MAX 80                  /* room for a future algorithm */
#define IL_FPR_MAX 200                 /* "SHA256:" + 32 colon-separated hex pairs + NUL */

/* Signature algorithms, as the envelope's algorithm byte. */
enum il_sig_alg { IL_ALG_ED25519 = 1 };

/* Domain separation: what a signature is for is part of what is signed,
 * because OpenSSL 3.0 has no Ed25519ctx. Envelope version 1 signs its
 * signed part under V1; version 2 signs its id under IL_CTX_MESSAGE. */
#define IL_CTX_MESSAGE_V1 "interlist/message/v1"
#define IL_CTX_MESSAGE "interlist/message/v2"
#define IL_CTX_REQUEST "interlist/request/v1"

void crypto_sha256(const void *data, size_t len, uint8_t out[IL_SHA256_LEN]);

/* SHA-256 of a || b (b may be NULL when blen is 0). */
void crypto_sha256_parts(const void *a, size_t alen, const void *b, size_t blen,
			 uint8_t out[IL_SHA256_LEN]);

/* Sign ctx || NUL || data with an Ed25519 private key. sig gets 64 bytes. */
int crypto_sign(EVP_PKEY *key, const char *ctx, const uint8_t *data, size_t len,
		uint8_t sig[IL_ED25519_SIG_LEN]);

/* 0 when sig is key's signature of ctx || NUL || data, else IL_EBADSIG. */
int crypto_verify(EVP_PKEY *pub, const char *ctx, const uint8_t *data, size_t len,
		  const uint8_t *sig, size_t sig_len);

/*
 * Load a PEM private key (Ed25519 signing key or TLS key). Refuses a file
 * that group or others may read (IL_EKEY), as ssh does. err gets a reason.
 */
int keys_load_private(const char *path, EVP_PKEY **out, char *err, size_t errlen);

/* Load a PEM Ed25519 public key. */
int keys_load_public(const char *path, EVP_PKEY **out, char *err, size_t errlen);

/* Check that a PEM certificate file parses; *not_after gets its expiry
 * (Unix seconds) when not NULL. */
int keys_check_cert(const char *path, int64_t *not_after, char *err, size_t errlen);

/*
 * `interlistctl init`: write DIR/ID.sign.key (0600), DIR/ID.sign.pub,
 * DIR/ID.tls.key (0600, ECDSA P-256) and DIR/ID.tls.crt (self-signed,
 * CN=ID, 10 years). Refuses (-EEXIST) if any of the four exists and writes
 * nothing then.
 */
int keys_generate(const char *dir, const char *id, char *err, size_t errlen);

/*
 * Fingerprint of a certificate (SHA-256 of its DER) or a public key (SHA-256
 * of its DER SubjectPublicKeyInfo), as "SHA256:" and colon-separated upper-case
 * hex pairs, the form `openssl x509 -fingerprint -sha256` prints.
 */
int keys_fingerprint(const char *path, char out[200], char *err, size_t errlen);

#endif
