/*
 * nonce.c — the replay cache for request nonces: (sender, nonce) pairs seen
 * within the time window. An open-addressing table that doubles when half
 * full; expired entries are dropped by nonce_cache_gc() (the tick timer).
 */
#include <stdlib.h>
#include <string.h>

#include "il/error.h"
#include "relay.h"

struct nonce_slot {
	uint8_t key[WIRE_NONCE_LEN + IL_ID_MAX];
	int64_t expires_ms;             /* 0: empty */
};

struct nonce_cache {
	struct nonce_slot *slots;
	size_t cap, used;
};

static void make_key(uint8_t key[WIRE_NONCE_LEN + IL_ID_MAX], const char *sender,
		     const uint8_t nonce[WIRE_NONCE_LEN])
{
	memset(key, 0, WIRE_NONCE_LEN + IL_ID_MAX);
	memcpy(key, nonce, WIRE_NONCE_LEN);
	memcpy(key + WIRE_NONCE_LEN, sender, strnlen(sender, IL_ID_MAX));
}

/* Nonces are random: their first bytes are a good enough hash. */
static size_t slot_of(const struct nonce_cache *nc, const uint8_t *key)
{
	uint64_t h;
	memcpy(&h, key, sizeof(h));
	return (size_t)(h & (nc->cap - 1));
}

static void insert(struct nonce_cache *nc, const uint8_t *key, int64_t expires)
{
	size_t i = slot_of(nc, key);
	while (nc->slots[i].expires_ms)
		i = (i + 1) & (nc->cap - 1);
	memcpy(nc->slots[i].key, key, sizeof(nc->slots[i].key));
	nc->slots[i].expires_ms = expires;
	nc->used++;
}

static int rehash(struct nonce_cache *nc, size_t cap, int64_t now)
{
	struct nonce_slot *old = nc->slots;
	size_t ocap = nc->cap;
	nc->slots = calloc(cap, sizeof(*nc->slots));
	if (!nc->slots) {
		nc->slots = old;
		return -1;
	}
	nc->cap = cap;
	nc->used = 0;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].expires_ms > now)
			insert(nc, old[i].key, old[i].expires_ms);
	free(old);
	return 0;
}

struct nonce_cache *nonce_cache_new(void)
{
	struct nonce_cache *nc = calloc(1, sizeof(*nc));
	if (!nc)
		return NULL;
	nc->cap = 1024;
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
	uint8_t key[WIRE_NONCE_LEN + IL_ID_MAX];
	make_key(key, sender, nonce);
	for (size_t i = slot_of(nc, key); nc->slots[i].expires_ms; i = (i + 1) & (nc->cap - 1))
		if (!memcmp(nc->slots[i].key, key, sizeof(key)))
			return 0;
	/* Grow (or fail closed: a cache we cannot grow refuses the request). */
	if ((nc->used + 1) * 2 > nc->cap && rehash(nc, nc->cap * 2, 0) < 0)
		return 0;
	insert(nc, key, expires_ms);
	return 1;
}

void nonce_cache_gc(struct nonce_cache *nc, int64_t now_ms)
{
	size_t cap = nc->cap;
	/* Shrink back when mostly empty; rehash drops the expired entries. */
	while (cap > 1024 && nc->used * 8 < cap)
		cap /= 2;
	rehash(nc, cap, now_ms);
}
