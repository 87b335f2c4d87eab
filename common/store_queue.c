/*
 * store_queue.c — per-peer outbound queues: a peer_queue row per (peer,
 * message) until the peer acknowledges it, it is purged, or it expires.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "il/error.h"
#include "store_int.h"

int store_queue_fetch(struct il_store *st, const char *peer, int64_t after_seq,
		      size_t max_n, size_t max_bytes, struct store_entry *out, size_t *n_out)
{
	if (!st || !peer || !n_out || (!out && max_n))
		return -EINVAL;
	*n_out = 0;
	if (max_n == 0)
		return 0;
	sqlite3_stmt *s;
	int r = store_stmt(st, STMT_Q_FETCH, &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, peer, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, after_seq);
	store_bind_count(s, 3, max_n);

	size_t n = 0, bytes = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		size_t len = (size_t)sqlite3_column_bytes(s, 2);
		/* At least one entry, even one over max_bytes, or a single big
		 * message would block the queue for good. */
		if (n > 0 && bytes + len > max_bytes)
			break;
		struct store_entry *e = &out[n];
		memset(e, 0, sizeof(*e));
		if ((r = store_copy_blob(s, 2, &e->blob, &e->blob_len)) != 0)
			goto fail;
		e->seq = sqlite3_column_int64(s, 0);
		memcpy(e->id, sqlite3_column_blob(s, 1), IL_SHA256_LEN);
		e->queued_ms = sqlite3_column_int64(s, 3);
		n++;
		bytes += len;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		r = store_err(st, rc, "queue_fetch");
		goto fail;
	}
	store_stmt_done(s);
	*n_out = n;
	return 0;

fail:
	store_stmt_done(s);
	store_entries_free(out, n);
	return r;
}

static void bind_seq(sqlite3_stmt *s, int idx, const void *items, size_t i)
{
	sqlite3_bind_int64(s, idx, ((const int64_t *)items)[i]);
}

int store_queue_ack(struct il_store *st, const char *peer, const int64_t *seqs, size_t n)
{
	if (!st || !peer || (!seqs && n))
		return -EINVAL;
	return store_exec_each(st, STMT_Q_ACK, peer, n, bind_seq, seqs, "queue_ack");
}

int store_queue_stats(struct il_store *st, const char *peer, uint64_t *count, int64_t *oldest_ms)
{
	if (!st || !peer)
		return -EINVAL;
	sqlite3_stmt *s;
	int r = store_stmt(st, STMT_Q_STATS, &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, peer, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (count)
			*count = (uint64_t)sqlite3_column_int64(s, 0);
		if (oldest_ms)
			*oldest_ms = sqlite3_column_int64(s, 1);
	} else {
		r = store_err(st, rc, "queue_stats");
	}
	store_stmt_done(s);
	return r;
}

int store_queue_purge(struct il_store *st, const char *peer, const uint8_t *id, uint64_t *removed)
{
	if (!st || !peer)
		return -EINVAL;
	sqlite3_stmt *s;
	/* Dropping one message is an ack the peer never sent. */
	int r = store_stmt(st, id ? STMT_Q_PURGE_ONE : STMT_Q_PURGE_ALL, &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, peer, -1, SQLITE_STATIC);
	if (id)
		store_bind_id(s, 2, id);
	if ((r = store_exec(st, s, "queue_purge")) != 0)
		return r;
	if (removed)
		*removed = (uint64_t)sqlite3_changes64(st->db);
	return 0;
}

struct expired {
	char *peer;
	uint64_t n;
};

static void expired_free(struct expired *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(x[i].peer);
	free(x);
}

/* Counts per peer of what the expiry will drop, read inside its transaction.
 * One pass over peer_queue: expiry runs every few minutes, and an index on
 * queued would cost every put for it. */
static int expire_count(struct il_store *st, int64_t cutoff_ms, struct expired **out, size_t *n_out)
{
	sqlite3_stmt *s;
	int r = store_stmt(st, STMT_Q_EXPIRED, &s);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, cutoff_ms);
	struct expired *x = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct expired *nx = realloc(x, ncap * sizeof(*x));
			if (!nx) {
				r = -ENOMEM;
				goto fail;
			}
			x = nx;
			cap = ncap;
		}
		x[n].peer = strdup((const char *)sqlite3_column_text(s, 0));
		if (!x[n].peer) {
			r = -ENOMEM;
			goto fail;
		}
		x[n].n = (uint64_t)sqlite3_column_int64(s, 1);
		n++;
	}
	if (rc != SQLITE_DONE) {
		r = store_err(st, rc, "queue_expire");
		goto fail;
	}
	store_stmt_done(s);
	*out = x;
	*n_out = n;
	return 0;

fail:
	store_stmt_done(s);
	expired_free(x, n);
	return r;
}

int store_queue_expire(struct il_store *st, int64_t cutoff_ms,
		       void (*cb)(void *arg, const char *peer, uint64_t n), void *arg)
{
	if (!st)
		return -EINVAL;
	struct expired *x = NULL;
	size_t n = 0;
	sqlite3_stmt *s;
	int r = store_txn_begin(st, "queue_expire");
	if (r)
		return r;
	if ((r = expire_count(st, cutoff_ms, &x, &n)) != 0)
		goto fail;
	if (n > 0) {
		if ((r = store_stmt(st, STMT_Q_EXPIRE, &s)) != 0)
			goto fail;
		sqlite3_bind_int64(s, 1, cutoff_ms);
		if ((r = store_exec(st, s, "queue_expire")) != 0)
			goto fail;
	}
	if ((r = store_txn_commit(st, "queue_expire")) != 0)
		goto fail;
	/* Only after the commit: the counters and log lines report drops that
	 * happened, not ones a rollback undid. */
	for (size_t i = 0; cb && i < n; i++)
		cb(arg, x[i].peer, x[i].n);
	expired_free(x, n);
	return 0;

fail:
	store_txn_rollback(st);
	expired_free(x, n);
	return r;
}
