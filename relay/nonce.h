/*
 * nonce.h — the replay cache for request nonces (nonce.c).
 */
#ifndef IL_NONCE_H
#define IL_NONCE_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct nonce_cache;

struct nonce_cache *nonce_cache_new(void);
void nonce_cache_free(struct nonce_cache *nc);
/* 1 if (sender, nonce) was new and is now remembered until expires_ms, 0 if
 * it was seen (or the cache could not grow: it fails closed). */
int nonce_cache_add(struct nonce_cache *nc, const char *sender, const uint8_t nonce[WIRE_NONCE_LEN],
		    int64_t expires_ms);
/* Drop the entries expired at now_ms; give memory back when mostly empty. */
void nonce_cache_gc(struct nonce_cache *nc, int64_t now_ms);
/* The longest run of occupied slots, which every add landing in it walks
 * (test_nonce). */
size_t nonce_cache_longest_run(const struct nonce_cache *nc);
/* Entries held, and the bytes of the table (test_nonce). */
size_t nonce_cache_size(const struct nonce_cache *nc, size_t *bytes);

#endif
