/*
 * test_nonce — the replay cache: a nonce is refused the second time from
 * the same sender and accepted from another, entries live until their
 * expiry and gc drops them after it, the table grows and shrinks back, and
 * nonces chosen to collide neither collide nor pile up in one run.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "relay/nonce.h"

static void nonce_of(uint32_t i, uint8_t out[WIRE_NONCE_LEN])
{
	/* Spread like random bytes, distinct per i. */
	uint64_t x = i * 0x9E3779B97F4A7C15ull, y = ~x * 0xBF58476D1CE4E5B9ull;
	memcpy(out, &x, 8);
	memcpy(out + 8, &y, 8);
}

int main(void)
{
	struct nonce_cache *nc = nonce_cache_new();
	uint8_t n[WIRE_NONCE_LEN];
	size_t bytes0, bytes;
	CHECK(nc != NULL);
	nonce_cache_size(nc, &bytes0);

	nonce_of(1, n);
	CHECK_EQ(nonce_cache_add(nc, "centr", n, 10000), 1);
	CHECK_EQ(nonce_cache_add(nc, "centr", n, 10000), 0);    /* a replay */
	CHECK_EQ(nonce_cache_add(nc, "lactld", n, 10000), 1);   /* another sender */
	CHECK_EQ(nonce_cache_size(nc, NULL), 2);

	/* Still there up to its expiry (rounded up to the second), gone after. */
	nonce_cache_gc(nc, 9999);
	CHECK_EQ(nonce_cache_add(nc, "centr", n, 10000), 0);
	nonce_cache_gc(nc, 10000);
	CHECK_EQ(nonce_cache_size(nc, NULL), 0);
	CHECK_EQ(nonce_cache_add(nc, "centr", n, 20000), 1);

	/* 100,000 distinct nonces: every one new, every one a replay after. */
	int fresh = 0, replays = 0;
	for (uint32_t i = 100; i < 100100; i++) {
		nonce_of(i, n);
		fresh += nonce_cache_add(nc, "ccnso", n, 30000);
	}
	for (uint32_t i = 100; i < 100100; i++) {
		nonce_of(i, n);
		replays += !nonce_cache_add(nc, "ccnso", n, 30000);
	}
	CHECK_EQ(fresh, 100000);
	CHECK_EQ(replays, 100000);
	CHECK_EQ(nonce_cache_size(nc, &bytes), 100001);
	/* Small slots, 12 bytes, and the table at least three eighths full. */
	CHECK(bytes <= 100001 * 12 * 8 / 3);

	/* Expired: gc empties it and gives the memory back. */
	nonce_cache_gc(nc, 30000);
	CHECK_EQ(nonce_cache_size(nc, &bytes), 0);
	CHECK_EQ(bytes, bytes0);

	/* Nonces that differ only in their second half are different nonces
	 * (the key once held just the first 8 bytes: a peer counting in bytes
	 * 8-15 had every request after its first refused as a replay). */
	uint8_t m[WIRE_NONCE_LEN];
	memset(n, 0x5a, sizeof(n));
	memcpy(m, n, sizeof(m));
	m[15] ^= 1;
	CHECK_EQ(nonce_cache_add(nc, "centr", n, 50000), 1);
	CHECK_EQ(nonce_cache_add(nc, "centr", m, 50000), 1);

	/* A peer picking nonces to collide: first 4 bytes fixed, the next 4
	 * counting. Taken as the slot, they all land in one run that every add
	 * and every gc walks; hashed under the cache's secret, runs stay short
	 * (about log n for a table at most three quarters full). */
	for (uint32_t i = 0; i < 50000; i++) {
		memset(n, 0, sizeof(n));
		memcpy(n + 4, &i, sizeof(i));
		CHECK_EQ(nonce_cache_add(nc, "lactld", n, 60000), 1);
	}
	CHECK(nonce_cache_longest_run(nc) < 200);
	nonce_cache_gc(nc, 55000);
	CHECK(nonce_cache_longest_run(nc) < 200);
	CHECK_EQ(nonce_cache_size(nc, NULL), 50000);
	nonce_cache_free(nc);

	/* gc in place (the table keeps its size): half expire, the other
	 * half is still found, and the expired ones are new again. */
	nc = nonce_cache_new();
	for (uint32_t i = 0; i < 60000; i++) {
		nonce_of(i, n);
		CHECK_EQ(nonce_cache_add(nc, "centr", n, (i & 1) ? 90000 : 70000), 1);
	}
	nonce_cache_size(nc, &bytes0);
	nonce_cache_gc(nc, 80000);
	CHECK_EQ(nonce_cache_size(nc, &bytes), 30000);
	CHECK_EQ(bytes, bytes0);                /* same table: purged in place */
	int live_seen = 0, gone_new = 0;
	for (uint32_t i = 0; i < 60000; i++) {
		nonce_of(i, n);
		if (i & 1)
			live_seen += !nonce_cache_add(nc, "centr", n, 90000);
		else
			gone_new += nonce_cache_add(nc, "centr", n, 95000);
	}
	CHECK_EQ(live_seen, 30000);
	CHECK_EQ(gone_new, 30000);
	nonce_cache_free(nc);
	return check_done("test_nonce");
}
