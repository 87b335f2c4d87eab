/*
 * store_int.h — private to common/store*.c: the handle, the prepared
 * statement cache and the transaction and error helpers the store's files
 * share. Names keep the store_ prefix but are not part of include/il/store.h;
 * nothing outside the store includes this file.
 */
#ifndef IL_STORE_INT_H
#define IL_STORE_INT_H

#include <sqlite3.h>

#include "il/store.h"

/* Every statement the store runs more than once; the SQL text is in store.c
 * (store_sql[]), next to the schema it depends on. */
enum store_stmt {
	STMT_BEGIN,
	STMT_BEGIN_READ,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_PUT_MSG,
	STMT_PUT_QUEUE,
	STMT_PUT_DELIVERY,
	STMT_SEQ_BY_TID,
	STMT_ID_BY_MSGID,
	STMT_Q_FETCH,
	STMT_Q_ACK,
	STMT_Q_PURGE_ONE,
	STMT_Q_STATS,
	STMT_Q_PURGE_ALL,
	STMT_Q_EXPIRED,
	STMT_Q_EXPIRE,
	STMT_D_FETCH,
	STMT_D_DONE,
	STMT_D_DEFER,
	STMT_D_PARK,
	STMT_D_FAILED,
	STMT_D_RETRY_ONE,
	STMT_D_RETRY_ALL,
	STMT_D_STATS,
	STMT_D_NEXT,
	STMT_PRUNE,
	STMT_SIZE,
	STMT_COUNT_
};

struct il_store {
	sqlite3 *db;
	char *path;                     /* the database file; path-wal is its WAL */
	sqlite3_stmt *stmt[STMT_COUNT_];
	int64_t last_seq;               /* highest message seq committed, or found at open */
	/* Deferred mode's WAL hook: frames in the WAL after the last commit
	 * (counted from its last restart) and commits since open. */
	int64_t wal_frames;
	int64_t wal_commits;
	int64_t frame_bytes;            /* a WAL frame: page size + 24-byte header */
};

/* The cached statement `which`, prepared on first use. After stepping, the
 * caller must hand it back with store_stmt_done() on every path: a SELECT
 * left unreset keeps a read transaction open, which stops checkpoints. */
int store_stmt(struct il_store *st, enum store_stmt which, sqlite3_stmt **out);
void store_stmt_done(sqlite3_stmt *s);

/* Map an SQLite result code to an interlist code and log it with the
 * connection's message (op names the caller, for the log line). Call it
 * before store_txn_rollback(), which replaces the connection's message. */
int store_err(struct il_store *st, int rc, const char *op);

/* Run sql once on db and copy its first column's text into buf (SQLITE_OK,
 * or the error). For pragmas and single values read at open. */
int store_pragma_text(sqlite3 *db, const char *sql, char *buf, size_t len);

/* Run a cached statement that returns no rows (bind first); store_err() on
 * failure. */
int store_exec(struct il_store *st, sqlite3_stmt *s, const char *op);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. Rollback is a no-op when SQLite has
 * already rolled the transaction back itself (after SQLITE_FULL, IOERR...). */
int store_txn_begin(struct il_store *st, const char *op);
int store_txn_commit(struct il_store *st, const char *op);
void store_txn_rollback(struct il_store *st);

/* One transaction running statement `which` once per item, with ?1 = key
 * (a peer or list name) and ?2 bound by bind(s, 2, i). */
int store_exec_each(struct il_store *st, enum store_stmt which, const char *key, size_t n,
		    void (*bind)(sqlite3_stmt *s, int idx, const void *items, size_t i),
		    const void *items, const char *op);

/* Copy a result row's blob column into a malloc'd buffer (never NULL, so a
 * zero-length blob still frees cleanly). */
int store_copy_blob(sqlite3_stmt *s, int col, uint8_t **out, size_t *len);

/* Bind helpers: a 32-byte id, and a size_t that must fit SQLite's int64. */
int store_bind_id(sqlite3_stmt *s, int idx, const uint8_t *id);
int store_bind_count(sqlite3_stmt *s, int idx, size_t n);

#endif
