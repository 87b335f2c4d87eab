/*
 * wire.h — the relay-to-relay request and reply frames (docs/protocol.md,
 * "Session protocol").
 *
 * Request (dialer -> listener), big-endian:
 *   "ILRQ" | u8 proto version | u8 type | u8 len, sender id | u8 len, receiver id
 *   | u64 time ms | 16 nonce | 16 receiver boot id (zero in HELLO)
 *   | u32 len, body | u8 len, signature
 * The signature is the sender's Ed25519 signature over IL_CTX_REQUEST || NUL ||
 * every byte before the signature length. Bodies:
 *   HELLO: empty
 *   PUSH:  u32 count, then count x (u32 len, envelope)
 *   PULL:  u64 token of the batch being acknowledged (0: none) | u32 count,
 *          count x u8 result for that batch's envelopes, in order | u32 max
 *          envelopes wanted | u32 wait ms (long poll)
 * Reply (listener -> dialer, trusted through the dialer's pinned certificate):
 *   "ILRP" | u8 proto version | u8 status | 16 responder boot id | body
 *   HELLO ok: empty.  PUSH ok: u32 count, count x u8 result.
 *   PULL ok: u64 token | u32 count, count x (u32 len, envelope)
 */
#ifndef IL_WIRE_H
#define IL_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "il/config.h"
#include "il/crypto.h"

#define WIRE_PROTO_VERSION 1
#define WIRE_NONCE_LEN 16
#define WIRE_BOOT_LEN 16
#define WIRE_MAX_BATCH 4096     /* envelopes per request or reply */

enum wire_type { WIRE_HELLO = 1, WIRE_PUSH = 2, WIRE_PULL = 3 };

enum wire_status {
	WIRE_OK = 0,
	WIRE_AUTH = 1,          /* sender proof failed */
	WIRE_REHELLO = 2,       /* boot id unknown: the listener restarted */
	WIRE_TRYLATER = 3,      /* store full or busy */
	WIRE_BADREQ = 4,        /* undecodable request */
	WIRE_VERSION = 5,       /* protocol version not supported */
	WIRE_REPLAY = 6,        /* nonce already seen (e.g. nng resent it) */
};

/* Per-envelope results; every value but TEMPFAIL removes it from the queue. */
enum wire_result {
	RES_ACCEPTED = 0,
	RES_DUPLICATE = 1,
	RES_TEMPFAIL = 2,       /* not stored, send again later */
	RES_MALFORMED = 10,
	RES_TOO_LARGE = 11,
	RES_UNKNOWN_LIST = 12,
	RES_UNKNOWN_ORIGIN = 13,
	RES_BAD_SIGNATURE = 14,
	RES_STALE = 15,
	RES_HOP_LIMIT = 16,
	RES_NOT_ACCEPTED = 17,  /* the list does not take that origin */
	RES_TLP = 18,           /* TLP above what we may receive (RED in transit) */
};
const char *wire_result_name(int r);

/* A decoded request header; pointers point into the frame. */
struct wire_req {
	uint8_t version;
	uint8_t type;
	char sender[IL_ID_MAX + 1];
	char receiver[IL_ID_MAX + 1];
	uint64_t time_ms;
	uint8_t nonce[WIRE_NONCE_LEN];
	uint8_t boot[WIRE_BOOT_LEN];
	const uint8_t *body;
	size_t body_len;
	const uint8_t *signed_part;     /* bytes the signature covers */
	size_t signed_len;
	const uint8_t *sig;
	size_t sig_len;
};

/* A growable output buffer. */
struct wbuf {
	uint8_t *p;
	size_t len, cap;
	int err;                        /* sticky: first allocation failure */
};
void wbuf_put(struct wbuf *b, const void *data, size_t n);
void wbuf_u8(struct wbuf *b, uint8_t v);
void wbuf_u32(struct wbuf *b, uint32_t v);
void wbuf_u64(struct wbuf *b, uint64_t v);
void wbuf_str8(struct wbuf *b, const char *s);
void wbuf_free(struct wbuf *b);

/* A bounds-checked reader over untrusted bytes. */
struct rbuf {
	const uint8_t *p;
	size_t len, off;
	int err;                        /* sticky: IL_ETRUNCATED once short */
};
uint8_t rbuf_u8(struct rbuf *r);
uint32_t rbuf_u32(struct rbuf *r);
uint64_t rbuf_u64(struct rbuf *r);
const uint8_t *rbuf_take(struct rbuf *r, size_t n);

/*
 * Build a signed request: header fields, then body, then the signature with
 * key. *out is malloc'd (caller owns it).
 */
int wire_req_encode(uint8_t type, const char *sender, const char *receiver, uint64_t time_ms,
		    const uint8_t boot[WIRE_BOOT_LEN], const uint8_t *body, size_t body_len,
		    EVP_PKEY *key, uint8_t **out, size_t *out_len);

/* Parse a request frame (no signature check). IL_EVERSION for another
 * protocol version (after the version byte), IL_EMALFORMED/IL_ETRUNCATED/
 * IL_EFIELD otherwise. */
int wire_req_decode(const uint8_t *buf, size_t len, struct wire_req *req);

/* Verify the request's signature with any of keys; 0 or IL_EBADSIG. */
int wire_req_verify(const struct wire_req *req, EVP_PKEY *const *keys, size_t n_keys);

/* Reply header; body follows. */
void wire_reply_header(struct wbuf *b, uint8_t status, const uint8_t boot[WIRE_BOOT_LEN]);
int wire_reply_decode(const uint8_t *buf, size_t len, uint8_t *status,
		      uint8_t boot[WIRE_BOOT_LEN], struct rbuf *body);

/*
 * Split a list of length-prefixed envelopes (u32 count, then count x
 * (u32 len, bytes)). Calls fn for each slice; stops at the first error.
 * Refuses counts above WIRE_MAX_BATCH.
 */
int wire_envelopes_each(struct rbuf *r, int (*fn)(void *arg, const uint8_t *p, size_t n),
			void *arg);

#endif
