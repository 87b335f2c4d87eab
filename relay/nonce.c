/*
 * nonce.c — the replay cache for request nonces: (sender, nonce) pairs seen
 * while a request carrying them could still pass the time check.
 *
 * An open-addressing table (linear probing) that doubles when three
 * quarters full and halves when an eighth full. It is the one structure of a
 * relay that grows with traffic (one entry per authenticated request for
 * five minutes), so a slot is small, 12 bytes: 64 bits of the nonce with a
 * 32-bit tag of the sender folded in, and the expiry in seconds. A false
 * "seen" needs two of them to share 64 random bits: at 100,000 entries, odds
 * of about 3e-10 over five minutes, and the cost would be one request
 * answered REPLAY. The soak run (500 msg/s, about 300 requests a second)
 * holds about 95,000 entries: 1.5 to 3 MiB of table.
 */
#include <stdlib.h>
#include <string.h>

#include "nonce.h"

#define NONCE_KEY_LEN 8

struct nonce_slot {
	uint8_t key[NONCE_KEY_LEN];     /* nonce bytes, the sender's tag xored in */
	uint32_t expires_s;             /* 0: empty */
} __attribute__((packed));              /* 12 bytes, not 16 */

struct nonce_cache {
	struct nonce_slot *slots;
	size_t cap, used;
};

#define NONCE_MIN_CAP 1024

/* FNV-1a: peers are a handful of configured ids. */
static uint32_t sender_tag(const char *sender)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)sender; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

/* Seconds, rounded up, so an entry never expires before expires_ms. */
static uint32_t to_s(int64_t ms)
{
	if (ms <= 0)
		return 1;
	int64_t s = (ms + 999) / 1000;
	return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

static void make_key(uint8_t key[NONCE_KEY_LEN], const char *sender,
		     const uint8_t nonce[WIRE_NONCE_LEN])
{
	uint32_t tag = sender_tag(sender), x;
	memcpy(key, nonce, NONCE_KEY_LEN);
	memcpy(&x, key + NONCE_KEY_LEN - 4, 4);
	x ^= tag;
	memcpy(key + NONCE_KEY_LEN - 4, &x, 4);
}

/* Nonces are random: their first bytes are a good enough hash. */
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
	if (!nc->slots) {
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
	make_key(e.key, sender, nonce);
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

void nonce_cache_gc(struct nonce_cache *nc, int64_t now_ms)
{
	uint32_t now_s = (uint32_t)(now_ms > 0 ? now_ms / 1000 : 0);
	size_t live = 0;
	for (size_t i = 0; i < nc->cap; i++)
		live += nc->slots[i].expires_s > now_s;
	size_t cap = nc->cap;
	/* Shrink back when mostly empty; rehash drops the expired entries. */
	while (cap > NONCE_MIN_CAP && live * 8 < cap)
		cap /= 2;
	rehash(nc, cap, now_s);
}

size_t nonce_cache_size(const struct nonce_cache *nc, size_t *bytes)
{
	if (bytes)
		*bytes = nc->cap * sizeof(*nc->slots);
	return nc->used;
}
