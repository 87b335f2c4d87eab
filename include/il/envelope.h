/*
 * envelope.h — the signed unit that travels between relays.
 *
 * Wire form (all integers big-endian; see docs/protocol.md):
 *
 *   signed part:  u8 version (2; 1 still read) | u8 alg (1 = Ed25519)
 *                 | u8 len, origin id | u8 len, list name
 *                 | u64 origin time (ms since epoch) | u8 tlp
 *                 | u32 len, message bytes (RFC 5322, LF line endings)
 *   signature:    u8 len, signature bytes (64 for Ed25519), over
 *                 IL_CTX_MESSAGE || NUL || id (version 2), or
 *                 IL_CTX_MESSAGE_V1 || NUL || signed part (version 1)
 *   hop part:     u8 hop limit | u8 count, then per hop: u8 len, relay id
 *
 * The envelope id is SHA-256 of the signed part: it names the content, and
 * the hop part (which changes in transit) is outside both id and signature.
 */
#ifndef IL_ENVELOPE_H
#define IL_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/types.h>

#include "il/config.h"
#include "il/crypto.h"
#include "il/tlp.h"

#define IL_ENVELOPE_VERSION 2      /* what envelope_create writes */
#define IL_ENVELOPE_VERSION_MIN 1  /* oldest that decodes and verifies */
#define IL_PATH_MAX IL_MAX_HOP_LIMIT
#define IL_ID_HEX_LEN 64
/* Room for envelope_path_str() of a full path: ids, '!' between them, NUL. */
#define IL_PATH_STR_MAX (IL_PATH_MAX * (IL_ID_MAX + 1))

/*
 * A decoded or built envelope. It owns `msg` (malloc'd); the rest is inline.
 * envelope_free() releases the message bytes; the struct itself belongs to
 * whoever declared it.
 */
struct il_envelope {
	uint8_t version;
	uint8_t alg;
	char origin[IL_ID_MAX + 1];
	char list[IL_LIST_MAX + 1];
	uint64_t origin_time_ms;
	enum il_tlp tlp;
	uint8_t *msg;
	size_t msg_len;
	uint8_t sig[IL_SIG_MAX];
	size_t sig_len;
	uint8_t hop_limit;
	uint8_t path_len;
	char path[IL_PATH_MAX][IL_ID_MAX + 1];
	uint8_t id[IL_SHA256_LEN];      /* SHA-256 of the signed part */
};

/*
 * Build and sign a new envelope as origin. Copies msg (which must already be
 * LF-normalised with relay headers stripped: see mailhdr_prepare). The path
 * starts as [origin]; hop_limit as given. On failure env holds nothing to free.
 */
int envelope_create(struct il_envelope *env, const char *origin, const char *list,
		    uint64_t origin_time_ms, enum il_tlp tlp, const uint8_t *msg,
		    size_t msg_len, uint8_t hop_limit, EVP_PKEY *sign_key);

/* The same, as the given envelope version (IL_ENVELOPE_VERSION_MIN ..
 * IL_ENVELOPE_VERSION, else IL_EVERSION): a relay writes version 1 while
 * some of its peers still run a release that reads nothing newer. */
int envelope_create_version(struct il_envelope *env, uint8_t version, const char *origin,
			    const char *list, uint64_t origin_time_ms, enum il_tlp tlp,
			    const uint8_t *msg, size_t msg_len, uint8_t hop_limit,
			    EVP_PKEY *sign_key);

/* Encoded size of env (for sizing batches). */
size_t envelope_encoded_len(const struct il_envelope *env);

/* Encode into a new malloc'd buffer; caller owns *out. */
int envelope_encode(const struct il_envelope *env, uint8_t **out, size_t *out_len);

/* Encode into buf of at least envelope_encoded_len() bytes; returns bytes written. */
size_t envelope_encode_into(const struct il_envelope *env, uint8_t *buf);

/*
 * Decode untrusted bytes. Reads only [buf, buf+len), refuses messages larger
 * than max_msg (IL_ETOOLARGE) before allocating, and returns a distinct code
 * per failure (IL_ETRUNCATED, IL_EVERSION, IL_EALG, IL_EFIELD, IL_ETRAILING,
 * IL_EMALFORMED). Computes env->id. Does not verify the signature. If
 * consumed is NULL, the envelope must span exactly len bytes; otherwise
 * trailing bytes are allowed and *consumed gets the envelope's length.
 */
int envelope_decode(const uint8_t *buf, size_t len, size_t max_msg,
		    struct il_envelope *env, size_t *consumed);

/*
 * Decode bytes this relay stored itself, whose id the store keeps next to
 * them: every check of envelope_decode (no size limit), but id is copied,
 * not hashed. Never for bytes from outside: the id would be unchecked.
 */
int envelope_decode_stored(const uint8_t *buf, size_t len, const uint8_t id[IL_SHA256_LEN],
			   struct il_envelope *env);

/* 0 if env->sig is a valid signature by pub over the signed part, else IL_EBADSIG. */
int envelope_verify(const struct il_envelope *env, EVP_PKEY *pub);

/* Append a relay id to the path; IL_EHOPS when the path is at its hop limit. */
int envelope_path_append(struct il_envelope *env, const char *relay_id);

/* Is relay_id already in the path? */
int envelope_path_has(const struct il_envelope *env, const char *relay_id);

/* Path as ids joined by '!' (the X-Interlist-Path form) into out. */
void envelope_path_str(const struct il_envelope *env, char *out, size_t outlen);

/* Lower-case hex of a 32-byte id into out[65]. */
void envelope_id_hex(const uint8_t id[IL_SHA256_LEN], char out[IL_ID_HEX_LEN + 1]);

/* Parse 64 hex digits (either case) into id; -EINVAL otherwise. */
int envelope_id_parse(const char *hex, uint8_t id[IL_SHA256_LEN]);

void envelope_free(struct il_envelope *env);

#endif
