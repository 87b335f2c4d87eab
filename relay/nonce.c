/*
 * nonce.c — the replay cache for request nonces: (sender, nonce) pairs seen
 * while a request carrying them could still pass the time check.
 *
 * An open-addressing table (linear probing) that doubles when three
 * quarters full and halves when an eighth full. It is the one structure of a
 * relay that grows with traffic (one entry per authenticated request for
 * five minutes), so a slot is small, 12 bytes: a 64-bit key and the expiry
 * in seconds. A false "seen" needs two keys to share 64 random bits: at
 * 100,000 entries, odds of about 3e-10 over five minutes, and the cost would
 * be one request answered REPLAY. The soak run (500 msg/s, about 300
 * requests a second) holds about 95,000 entries: 1.5 to 3 MiB of table.
 *
 * The key is HMAC-SHA256, under a secret drawn at start, of the sender and
 * the whole nonce. The nonce is chosen by the peer: taken as it is, a peer
 * could send nonces that all land in one slot, and every add and every gc
 * would walk one long run of the table (quadratic, on the loop thread). It
 * cannot aim at slots it cannot compute. Hashing all 16 bytes also keeps two
 * nonces apart that differ only in their second half.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "nonce.h"

#define NONCE_KEY_LEN 8

struct nonce_slot {
	uint8_t key[NONCE_KEY_LEN];     /* keyed hash of sender and nonce */
	uint32_t expires_s;             /* 0: empty */
} __attribute__((packed));              /* 12 bytes, not 16 */

struct nonce_cache {
	struct nonce_slot *slots;
	size_t cap, used;
	uint8_t secret[32];
};

#define NONCE_MIN_CAP 1024

/* Seconds, rounded up, so an entry never expires before expires_ms. */
static uint32_t to_s(int64_t ms)
{
	if (ms <= 0)
		return 1;
	int64_t s = (ms + 999) / 1000;
	return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/* 0, or -1 if HMAC failed (the caller fails closed). */
static int make_key(const struct nonce_cache *nc, uint8_t key[NONCE_KEY_LEN], const char *sender,
		    const uint8_t nonce[WIRE_NONCE_LEN])
{
	/* sender NUL nonce: ids cannot hold a NUL, so no two pairs meet. */
	uint8_t msg[IL_ID_MAX + 1 + WIRE_NONCE_LEN], md[EVP_MAX_MD_SIZE];
	size_t sl = strnlen(sender, IL_ID_MAX);
	unsigned int mdlen = 0;
	memcpy(msg, sender, sl);
	msg[sl] = 0;
	memcpy(msg + sl + 1, nonce, WIRE_NONCE_LEN);
	if (!HMAC(EVP_sha256(), nc->secret, sizeof(nc->secret), msg, sl + 1 + WIRE_NONCE_LEN, md, &mdlen) ||
	    mdlen < NONCE_KEY_LEN)
		return -1;
	memcpy(key, md, NONCE_KEY_LEN);
	return 0;
}

/* Keys are keyed hashes: their first bytes spread evenly. */
static size_t slot_of(const struct nonce_cache *nc, const uint8_t *key)
{
	uint64_t h;
	memcpy(&h, key, sizeof(h));
	return (size_t)(h & (nc->cap - 1));
}

static void insert(struct nonce_cache *nc, const struct nonce_slot *e)
{
	size_t i = slot_of(nc, e->key);
	while (nc->slots[i].expires_s)
		i = (i + 1) & (nc->cap - 1);
	nc->slots[i] = *e;
	nc->used++;
}

/* Move the live entries into a table of cap slots (expired ones are left
 * behind). On failure the old table stays. */
static int rehash(struct nonce_cache *nc, size_t cap, uint32_t now_s)
{
	struct nonce_slot *old = nc->slots;
	size_t ocap = nc->cap;
	struct nonce_slot *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -1;
	nc->slots = slots;
	nc->cap = cap;
	nc->used = 0;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].expires_s > now_s)
			insert(nc, &old[i]);
	free(old);
	return 0;
}

struct nonce_cache *nonce_cache_new(void)
{
	struct nonce_cache *nc = calloc(1, sizeof(*nc));
	if (!nc)
		return NULL;
	nc->cap = NONCE_MIN_CAP;
	nc->slots = calloc(nc->cap, sizeof(*nc->slots));
	if (!nc->slots || RAND_bytes(nc->secret, sizeof(nc->secret)) != 1) {
		free(nc->slots);
		free(nc);
		return NULL;
	}
	return nc;
}

void nonce_cache_free(struct nonce_cache *nc)
{
	if (!nc)
		return;
	free(nc->slots);
	free(nc);
}

int nonce_cache_add(struct nonce_cache *nc, const char *sender, const uint8_t nonce[WIRE_NONCE_LEN],
		    int64_t expires_ms)
{
	struct nonce_slot e = { .expires_s = to_s(expires_ms) };
	if (make_key(nc, e.key, sender, nonce) < 0)
		return 0;
	for (size_t i = slot_of(nc, e.key); nc->slots[i].expires_s; i = (i + 1) & (nc->cap - 1))
		if (!memcmp(nc->slots[i].key, e.key, NONCE_KEY_LEN))
			return 0;
	/* Grow at three quarters (or fail closed: a cache we cannot grow
	 * refuses the request). Expired entries stay until the next gc. */
	if ((nc->used + 1) * 4 > nc->cap * 3 && rehash(nc, nc->cap * 2, 0) < 0)
		return 0;
	insert(nc, &e);
	return 1;
}

/* Empty slot i, then move back each entry of the run after it that may
 * sit there (its home slot is not in (i, j]), so every run stays unbroken:
 * deletion in linear probing without tombstones (Knuth, Algorithm R). */
static void delete_at(struct nonce_cache *nc, size_t i)
{
	size_t mask = nc->cap - 1, j = i;
	nc->slots[i].expires_s = 0;
	nc->used--;
	for (;;) {
		j = (j + 1) & mask;
		if (!nc->slots[j].expires_s)
			return;
		size_t h = slot_of(nc, nc->slots[j].key);
		if (i <= j ? (i < h && h <= j) : (i < h || h <= j))
			continue;
		nc->slots[i] = nc->slots[j];
		nc->slots[j].expires_s = 0;
		i = j;
	}
}

/* Drop the expired entries where they are. Starting at an empty slot, no
 * run wraps past the start; a slot that an entry moved into is looked at
 * again. */
static void purge_in_place(struct nonce_cache *nc, uint32_t now_s)
{
	size_t mask = nc->cap - 1, start = 0;
	while (nc->slots[start].expires_s)      /* at most 3/4 full: one is empty */
		start = (start + 1) & mask;
	for (size_t k = 1; k <= nc->cap;) {
		size_t i = (start + k) & mask;
		if (nc->slots[i].expires_s && nc->slots[i].expires_s <= now_s)
			delete_at(nc, i);
		else
			k++;
	}
}

void nonce_cache_gc(struct nonce_cache *nc, int64_t now_ms)
{
	uint32_t now_s = (uint32_t)(now_ms > 0 ? now_ms / 1000 : 0);
	size_t live = 0;
	for (size_t i = 0; i < nc->cap; i++)
		live += nc->slots[i].expires_s > now_s;
	size_t cap = nc->cap;
	/* Shrink back when mostly empty (rehash drops the expired entries);
	 * otherwise drop them in place. A new table at every gc, with the
	 * old one freed, left the allocator holding both: a soak showed A's
	 * RSS rising by a table's size once the window was full. */
	while (cap > NONCE_MIN_CAP && live * 8 < cap)
		cap /= 2;
	if (cap != nc->cap)
		rehash(nc, cap, now_s);
	else
		purge_in_place(nc, now_s);
}

size_t nonce_cache_longest_run(const struct nonce_cache *nc)
{
	size_t best = 0, run = 0;
	/* Twice round, so a run that wraps past the end counts whole. */
	for (size_t k = 0; k < 2 * nc->cap; k++) {
		run = nc->slots[k & (nc->cap - 1)].expires_s ? run + 1 : 0;
		if (run > best)
			best = run;
	}
	return best < nc->cap ? best : nc->cap;
}

size_t nonce_cache_size(const struct nonce_cache *nc, size_t *bytes)
{
	if (bytes)
		*bytes = nc->cap * sizeof(*nc->slots);
	return nc->used;
}
