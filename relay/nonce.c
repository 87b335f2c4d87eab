/*
 * nonce.c — the replay cache for request nonces: (sender, nonce) pairs seen
 * while a request carrying them could still pass the time check.
 *
 * An open-addressing table that doubles when half full and halves when an
 * eighth full. It is the one structure of a relay that grows with traffic
 * (one entry per authenticated request for five minutes), so a slot is
 * small: the 16 random nonce bytes, a 32-bit tag of the sender and the
 * expiry in seconds, 24 bytes. Two senders' tags may collide; that matters
 * only if they also sent the same 128-bit random nonce, which does not
 * happen. A 600-second soak at 500 msg/s (about 300 requests a second) holds
 * about 90,000 entries: 6 MiB at most, and no more after five minutes.
 */
#include <stdlib.h>
#include <string.h>

#include "nonce.h"

struct nonce_slot {
	uint8_t nonce[WIRE_NONCE_LEN];
	uint32_t sender;
	uint32_t expires_s;             /* 0: empty */
};

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

/* Nonces are random: their first bytes are a good enough hash. */
static size_t slot_of(const struct nonce_cache *nc, const uint8_t *nonce, uint32_t tag)
{
	uint64_t h;
	memcpy(&h, nonce, sizeof(h));
	return (size_t)((h ^ tag) & (nc->cap - 1));
}

static void insert(struct nonce_cache *nc, const struct nonce_slot *e)
{
	size_t i = slot_of(nc, e->nonce, e->sender);
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
	struct nonce_slot e = { .sender = sender_tag(sender), .expires_s = to_s(expires_ms) };
	memcpy(e.nonce, nonce, WIRE_NONCE_LEN);
	for (size_t i = slot_of(nc, e.nonce, e.sender); nc->slots[i].expires_s;
	     i = (i + 1) & (nc->cap - 1))
		if (nc->slots[i].sender == e.sender && !memcmp(nc->slots[i].nonce, e.nonce, WIRE_NONCE_LEN))
			return 0;
	/* Grow (or fail closed: a cache we cannot grow refuses the request).
	 * Expired entries are kept until the next gc: they still answer. */
	if ((nc->used + 1) * 2 > nc->cap && rehash(nc, nc->cap * 2, 0) < 0)
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
