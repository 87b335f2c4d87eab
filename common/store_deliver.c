/*
 * store_deliver.c — per-list delivery state. A deliveries row exists while a
 * message still has to reach its list: pending (state 0, tried again from
 * next_try) or parked after a permanent failure (state 1). A done delivery's
 * row is deleted in the same transaction that records it, so no restart can
 * deliver it twice.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "il/error.h"
#include "store_int.h"

/* Column layout shared by STMT_D_FETCH and STMT_D_FAILED. */
enum { COL_SEQ, COL_ID, COL_BLOB, COL_RECEIVED, COL_ATTEMPTS, COL_ERROR };

static int row_entry(sqlite3_stmt *s, struct store_entry *e)
{
	memset(e, 0, sizeof(*e));
	const unsigned char *err = sqlite3_column_text(s, COL_ERROR);
	if (err && !(e->last_error = strdup((const char *)err)))
		return -ENOMEM;
	int r = store_copy_blob(s, COL_BLOB, &e->blob, &e->blob_len);
	if (r) {
		free(e->last_error);
		e->last_error = NULL;
		return r;
	}
	e->seq = sqlite3_column_int64(s, COL_SEQ);
	memcpy(e->id, sqlite3_column_blob(s, COL_ID), IL_SHA256_LEN);
	e->queued_ms = sqlite3_column_int64(s, COL_RECEIVED);
	e->attempts = sqlite3_column_int(s, COL_ATTEMPTS);
	return 0;
}

/* The in-flight set is bounded by the list's delivery concurrency (a few
 * dozen at most), so a linear scan beats sorting a copy on every fetch. */
static int in_set(int64_t seq, const int64_t *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == seq)
			return 1;
	return 0;
}

/* Step s (bound by the caller) into out, skipping seqs in skip; resets s. */
static int fetch_rows(struct il_store *st, sqlite3_stmt *s, size_t max_n, const int64_t *skip,
		      size_t n_skip, struct store_entry *out, size_t *n_out, const char *op)
{
	size_t n = 0;
	int rc = SQLITE_DONE, r = 0;
	while (n < max_n && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (in_set(sqlite3_column_int64(s, COL_SEQ), skip, n_skip))
			continue;
		if ((r = row_entry(s, &out[n])) != 0)
			goto fail;
		n++;
	}
	if (n < max_n && rc != SQLITE_DONE) {
		r = store_err(st, rc, op);
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

int store_deliver_fetch(struct il_store *st, const char *list, int64_t now_ms, int64_t max_seq,
			size_t max_n, const int64_t *skip_seqs, size_t n_skip,
			struct store_entry *out, size_t *n_out)
{
	if (!st || !list || !n_out || (!out && max_n) || (!skip_seqs && n_skip))
		return -EINVAL;
	*n_out = 0;
	if (max_n == 0)
		return 0;
	sqlite3_stmt *s;
	int r = store_stmt(st, STMT_D_FETCH, &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, list, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now_ms);
	/* Every skipped seq may be among the first rows: ask for that many more. */
	store_bind_count(s, 3, max_n + n_skip < max_n ? SIZE_MAX : max_n + n_skip);
	sqlite3_bind_int64(s, 4, max_seq);
	return fetch_rows(st, s, max_n, skip_seqs, n_skip, out, n_out, "deliver_fetch");
}

static void bind_seq(sqlite3_stmt *s, int idx, const void *items, size_t i)
{
	sqlite3_bind_int64(s, idx, ((const int64_t *)items)[i]);
}

int store_deliver_done(struct il_store *st, const char *list, const int64_t *seqs, size_t n)
{
	if (!st || !list || (!seqs && n))
		return -EINVAL;
	return store_exec_each(st, STMT_D_DONE, list, n, bind_seq, seqs, "deliver_done");
}

/* Run an UPDATE of one pending delivery; -ENOENT when there is none (done
 * already, parked, or never queued) so the caller can tell. */
static int update_one(struct il_store *st, sqlite3_stmt *s, const char *op)
{
	int r = store_exec(st, s, op);
	if (r)
		return r;
	return sqlite3_changes(st->db) ? 0 : -ENOENT;
}

int store_deliver_defer(struct il_store *st, const char *list, int64_t seq, int64_t next_try_ms,
			const char *error)
{
	if (!st || !list)
		return -EINVAL;
	sqlite3_stmt *s;
	int r = store_stmt(st, STMT_D_DEFER, &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, list, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, seq);
	sqlite3_bind_int64(s, 3, next_try_ms);
	sqlite3_bind_text(s, 4, error, -1, SQLITE_STATIC);
	return update_one(st, s, "deliver_defer");
}

int store_deliver_park(struct il_store *st, const char *list, int64_t seq, const char *error)
{
	if (!st || !list)
		return -EINVAL;
	sqlite3_stmt *s;
	int r = store_stmt(st, STMT_D_PARK, &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, list, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, seq);
	sqlite3_bind_text(s, 3, error, -1, SQLITE_STATIC);
	return update_one(st, s, "deliver_park");
}

int store_deliver_failed(struct il_store *st, const char *list, size_t max_n,
			 struct store_entry *out, size_t *n_out)
{
	if (!st || !list || !n_out || (!out && max_n))
		return -EINVAL;
	*n_out = 0;
	if (max_n == 0)
		return 0;
	sqlite3_stmt *s;
	int r = store_stmt(st, STMT_D_FAILED, &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, list, -1, SQLITE_STATIC);
	store_bind_count(s, 2, max_n);
	return fetch_rows(st, s, max_n, NULL, 0, out, n_out, "deliver_failed");
}

int store_deliver_retry(struct il_store *st, const char *list, const uint8_t *id, uint64_t *count)
{
	if (!st || !list)
		return -EINVAL;
	sqlite3_stmt *s;
	int r = store_stmt(st, id ? STMT_D_RETRY_ONE : STMT_D_RETRY_ALL, &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, list, -1, SQLITE_STATIC);
	if (id)
		store_bind_id(s, 2, id);
	if ((r = store_exec(st, s, "deliver_retry")) != 0)
		return r;
	if (count)
		*count = (uint64_t)sqlite3_changes64(st->db);
	return 0;
}

int store_deliver_stats(struct il_store *st, const char *list, uint64_t *pending, uint64_t *failed)
{
	if (!st || !list)
		return -EINVAL;
	sqlite3_stmt *s;
	int r = store_stmt(st, STMT_D_STATS, &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, list, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (pending)
			*pending = (uint64_t)sqlite3_column_int64(s, 0);
		if (failed)
			*failed = (uint64_t)sqlite3_column_int64(s, 1);
	} else {
		r = store_err(st, rc, "deliver_stats");
	}
	store_stmt_done(s);
	return r;
}

int store_deliver_next_try(struct il_store *st, const char *list, int64_t now_ms, int64_t *next_ms)
{
	if (!st || !list || !next_ms)
		return -EINVAL;
	*next_ms = 0;
	sqlite3_stmt *s;
	int r = store_stmt(st, STMT_D_NEXT, &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, list, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now_ms);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*next_ms = sqlite3_column_int64(s, 0);  /* NULL (none) reads as 0 */
	else
		r = store_err(st, rc, "deliver_next_try");
	store_stmt_done(s);
	return r;
}
