/*
 * store.c — opening the database, the schema and its migrations, the
 * statement cache, and the message table (put, lookups). The per-peer queues
 * are in store_queue.c, the deliveries in store_deliver.c, prune, backup and
 * size in store_upkeep.c. docs/store.md describes the schema and why a
 * returned 0 means the write is on disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "il/error.h"
#include "il/log.h"
#include "il/util.h"
#include "store_int.h"

/* The loop thread blocks while it waits, so this is short: only another
 * writer (an operator's sqlite3 shell) can make a write wait, and the relay
 * answers IL_EFULL ("try later") rather than stall every peer. */
#define STORE_BUSY_MS 1000

/* A big prune or a backlog flush leaves a big WAL behind; truncate it back to
 * this after checkpoints so the data_dir does not keep the high-water mark. */
#define STORE_WAL_LIMIT (16 * 1024 * 1024)

#define STORE_PAGE_SIZE "8192"

/*
 * The writer waits on the checkpointer's short locks (a RESTART holds
 * writers off while it copies the last frames and syncs the database): in
 * steps of 0.1 ms growing to 2 ms, not sqlite3_busy_timeout's 1, 2, 5, 10 ms,
 * which kept the loop asleep for milliseconds after a lock held for less.
 * Gives up after STORE_BUSY_MS in all, as the timeout did.
 */
static int store_busy_wait(void *arg, int count)
{
	(void)arg;
	int64_t waited_us = 0, step_us = 100;
	for (int i = 0; i < count; i++) {
		waited_us += step_us;
		step_us = step_us * 2 > 2000 ? 2000 : step_us * 2;
	}
	if (waited_us >= (int64_t)STORE_BUSY_MS * 1000)
		return 0;
	struct timespec ts = { 0, (long)step_us * 1000 };
	nanosleep(&ts, NULL);
	return 1;
}

/*
 * Schema history. migrations[v] takes a database from user_version v to v+1;
 * version 0 is an empty file, so migrations[0] creates the first schema. All
 * steps of one open run in a single transaction with the new user_version,
 * so a crash mid-migration leaves the old version intact. To change the
 * schema: add a step, bump IL_STORE_SCHEMA, never edit a released step.
 *
 * No FOREIGN KEY clauses: enforcing them would need indexes on peer_queue.seq
 * and deliveries.seq that every put pays for. The invariant (a queue or
 * delivery row points at a stored message) holds because store_prune() is the
 * only code that deletes messages and it skips referenced ones.
 */
/* The messages table's columns after its id, the same in every schema so
 * far (each step spells out its own id column). */
#define MESSAGES_COLUMNS_AFTER_ID                                                   \
	" list TEXT NOT NULL, msgid TEXT, origin TEXT, origin_time INTEGER NOT NULL,"   \
	" received INTEGER NOT NULL, tlp INTEGER NOT NULL, local INTEGER NOT NULL,"    \
	" blob BLOB NOT NULL);"

static const char schema_v1[] =
	/* seq never repeats (AUTOINCREMENT): peers' fetch cursors and the
	 * delivery in-flight sets are seqs, and a reused one after a prune of
	 * the newest message would be skipped or confused with the old one. */
	"CREATE TABLE messages ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" id BLOB NOT NULL UNIQUE CHECK (length(id) = 32),"
	MESSAGES_COLUMNS_AFTER_ID
	/* A cross-post reaching us through two peers is one message. */
	"CREATE UNIQUE INDEX messages_list_msgid ON messages (list, msgid)"
	" WHERE msgid IS NOT NULL;"
	"CREATE INDEX messages_received ON messages (received);"
	"CREATE TABLE peer_queue ("
	" peer TEXT NOT NULL,"
	" seq INTEGER NOT NULL,"
	" queued INTEGER NOT NULL,"
	" PRIMARY KEY (peer, seq)) WITHOUT ROWID;"
	/* state 0 pending, 1 failed (parked); a done delivery is deleted. */
	"CREATE TABLE deliveries ("
	" list TEXT NOT NULL,"
	" seq INTEGER NOT NULL,"
	" state INTEGER NOT NULL,"
	" attempts INTEGER NOT NULL,"
	" next_try INTEGER NOT NULL,"
	" last_error TEXT,"
	" PRIMARY KEY (list, seq)) WITHOUT ROWID;"
	/* In seq order per list and state, so a fetch walks the index and stops
	 * at its limit; next_try is in the index so it filters without the table. */
	"CREATE INDEX deliveries_due ON deliveries (list, state, seq, next_try);";

/*
 * v2: the id's uniqueness moves from a UNIQUE column to an index on
 * (origin_time, id). An id is a SHA-256, so an index on it alone puts every
 * insert on a random leaf page, and a WAL commit writes each touched page
 * whole: about 8 KiB per message. Messages arrive in about the order of
 * their origin time, so (origin_time, id) inserts land on the last few
 * pages, shared by the whole batch. The same id always has the same origin
 * time (both are signed), so the index is just as unique. Lookups that know
 * the envelope give both; the rare ones by id alone (operator commands)
 * scan this index, which covers id. SQLite cannot drop a column constraint:
 * the table is rebuilt, keeping its AUTOINCREMENT counter.
 */
static const char schema_v2[] =
	"CREATE TABLE messages_v2 ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" id BLOB NOT NULL CHECK (length(id) = 32),"
	MESSAGES_COLUMNS_AFTER_ID
	"INSERT INTO messages_v2 SELECT seq, id, list, msgid, origin, origin_time, received,"
	" tlp, local, blob FROM messages ORDER BY seq;"
	"CREATE TEMP TABLE il_seq AS SELECT seq FROM sqlite_sequence WHERE name = 'messages';"
	"DROP TABLE messages;"
	"ALTER TABLE messages_v2 RENAME TO messages;"
	"UPDATE sqlite_sequence SET seq = max(seq, (SELECT coalesce(max(seq), 0) FROM il_seq))"
	" WHERE name = 'messages';"
	"INSERT INTO sqlite_sequence (name, seq) SELECT 'messages', seq FROM il_seq"
	" WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'messages');"
	"DROP TABLE il_seq;"
	"CREATE UNIQUE INDEX messages_time_id ON messages (origin_time, id);"
	"CREATE UNIQUE INDEX messages_list_msgid ON messages (list, msgid)"
	" WHERE msgid IS NOT NULL;"
	"CREATE INDEX messages_received ON messages (received);";

static int migrate_create_v1(sqlite3 *db) { return sqlite3_exec(db, schema_v1, NULL, NULL, NULL); }
static int migrate_v1_v2(sqlite3 *db) { return sqlite3_exec(db, schema_v2, NULL, NULL, NULL); }

static int (*const store_migrations[IL_STORE_SCHEMA])(sqlite3 *db) = {
	migrate_create_v1,                      /* 0 -> 1 */
	migrate_v1_v2,                          /* 1 -> 2 */
};

/* Cached statements (enum store_stmt in store_int.h). */
static const char *const store_sql[STMT_COUNT_] = {
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_BEGIN_READ] = "BEGIN DEFERRED",	/* store_read_begin */
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	/* DO NOTHING only covers the unique constraints: a NOT NULL or CHECK
	 * violation is still an error, where OR IGNORE would drop the row. */
	[STMT_PUT_MSG] = "INSERT INTO messages (id, list, msgid, origin, origin_time, received,"
			 " tlp, local, blob) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
			 " ON CONFLICT DO NOTHING",
	[STMT_PUT_QUEUE] = "INSERT INTO peer_queue (peer, seq, queued) VALUES (?1, ?2, ?3)"
			   " ON CONFLICT DO NOTHING",
	[STMT_PUT_DELIVERY] = "INSERT INTO deliveries (list, seq, state, attempts, next_try)"
			      " VALUES (?1, ?2, 0, 0, 0) ON CONFLICT DO NOTHING",
	[STMT_SEQ_BY_TID] = "SELECT seq FROM messages WHERE origin_time = ?2 AND id = ?1",
	[STMT_ID_BY_MSGID] = "SELECT id FROM messages WHERE list = ?1 AND msgid = ?2",
	[STMT_Q_FETCH] = "SELECT q.seq, m.id, m.blob, q.queued FROM peer_queue AS q"
			 " JOIN messages AS m ON m.seq = q.seq"
			 " WHERE q.peer = ?1 AND q.seq > ?2 ORDER BY q.seq LIMIT ?3",
	[STMT_Q_ACK] = "DELETE FROM peer_queue WHERE peer = ?1 AND seq = ?2",
	[STMT_Q_PURGE_ONE] = "DELETE FROM peer_queue WHERE peer = ?1 AND seq IN"
			     " (SELECT seq FROM messages INDEXED BY messages_time_id WHERE id = ?2)",
	[STMT_Q_STATS] = "SELECT count(*), coalesce(min(queued), 0) FROM peer_queue"
			 " WHERE peer = ?1",
	[STMT_Q_PURGE_ALL] = "DELETE FROM peer_queue WHERE peer = ?1",
	[STMT_Q_EXPIRED] = "SELECT peer, count(*) FROM peer_queue WHERE queued < ?1"
			   " GROUP BY peer",
	[STMT_Q_EXPIRE] = "DELETE FROM peer_queue WHERE queued < ?1",
	/* INDEXED BY: without statistics the planner walks the primary key,
	 * stepping over every parked and deferred row of the list on each fetch. */
	[STMT_D_FETCH] = "SELECT d.seq, m.id, m.blob, m.received, d.attempts, d.last_error"
			 " FROM deliveries AS d INDEXED BY deliveries_due"
			 " JOIN messages AS m ON m.seq = d.seq"
			 " WHERE d.list = ?1 AND d.state = 0 AND d.next_try <= ?2 AND d.seq <= ?4"
			 " ORDER BY d.seq LIMIT ?3",
	[STMT_D_DONE] = "DELETE FROM deliveries WHERE list = ?1 AND seq = ?2",
	[STMT_D_DEFER] = "UPDATE deliveries SET attempts = attempts + 1, next_try = ?3,"
			 " last_error = ?4 WHERE list = ?1 AND seq = ?2 AND state = 0",
	[STMT_D_PARK] = "UPDATE deliveries SET state = 1, attempts = attempts + 1,"
			" last_error = ?3 WHERE list = ?1 AND seq = ?2 AND state = 0",
	[STMT_D_FAILED] = "SELECT d.seq, m.id, m.blob, m.received, d.attempts, d.last_error"
			  " FROM deliveries AS d INDEXED BY deliveries_due"
			  " JOIN messages AS m ON m.seq = d.seq"
			  " WHERE d.list = ?1 AND d.state = 1 ORDER BY d.seq LIMIT ?2",
	/* An operator's retry starts a fresh backoff: attempts back to 0. */
	[STMT_D_RETRY_ONE] = "UPDATE deliveries SET state = 0, next_try = 0, attempts = 0"
			     " WHERE list = ?1 AND state = 1"
			     " AND seq IN (SELECT seq FROM messages INDEXED BY messages_time_id"
			     " WHERE id = ?2)",
	[STMT_D_RETRY_ALL] = "UPDATE deliveries SET state = 0, next_try = 0, attempts = 0"
			     " WHERE list = ?1 AND state = 1",
	[STMT_D_NEXT] = "SELECT min(next_try) FROM deliveries"
			" WHERE list = ?1 AND state = 0 AND next_try > ?2",
	[STMT_D_STATS] = "SELECT count(*) FILTER (WHERE state = 0),"
			 " count(*) FILTER (WHERE state = 1) FROM deliveries WHERE list = ?1",
	/* Non-correlated NOT IN: SQLite builds each set once, so this is one
	 * pass over the old messages, not a lookup per message per table. */
	[STMT_PRUNE] = "DELETE FROM messages WHERE received < ?1"
		       " AND seq NOT IN (SELECT seq FROM peer_queue)"
		       " AND seq NOT IN (SELECT seq FROM deliveries)",
	[STMT_SIZE] = "SELECT (SELECT count(*) FROM messages),"
		      " (SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size())",
};

/* ---------- helpers shared through store_int.h ---------- */

int store_stmt(struct il_store *st, enum store_stmt which, sqlite3_stmt **out)
{
	IL_ASSERT(which < STMT_COUNT_ && store_sql[which]);
	*out = NULL;
	if (!st->stmt[which]) {
		/* PERSISTENT: these live as long as the handle, so SQLite keeps
		 * them out of its short-lived lookaside memory. */
		int rc = sqlite3_prepare_v3(st->db, store_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
					    &st->stmt[which], NULL);
		if (rc != SQLITE_OK)
			return store_err(st, rc, "prepare");
	}
	*out = st->stmt[which];
	return 0;
}

void store_stmt_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	/* Blobs are bound SQLITE_STATIC from the caller's memory; do not keep
	 * pointers to it past the call. */
	sqlite3_clear_bindings(s);
}

int store_err(struct il_store *st, int rc, const char *op)
{
	int code;
	switch (rc & 0xff) {
	case SQLITE_FULL:
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		code = IL_EFULL;
		break;
	case SQLITE_NOMEM:
		code = -ENOMEM;
		break;
	case SQLITE_IOERR: {
		/* A full disk shows as SQLITE_FULL for the main write path, but
		 * as IOERR_WRITE / IOERR_SHMSIZE / ... elsewhere, and a quota
		 * (EDQUOT) always as IOERR: look at the errno underneath. */
		int e = sqlite3_system_errno(st->db);
		code = (e == ENOSPC || e == EDQUOT) ? IL_EFULL : IL_ESTORE;
		break;
	}
	default:
		code = IL_ESTORE;
		break;
	}
	log_warn("store", "sql_failed", "op=%s rc=%d err=%s", op, rc,
		 log_q(sqlite3_errmsg(st->db)));
	return code;
}

int store_exec(struct il_store *st, sqlite3_stmt *s, const char *op)
{
	int rc = sqlite3_step(s);
	int r = rc == SQLITE_DONE ? 0 : store_err(st, rc, op);
	store_stmt_done(s);
	return r;
}

static int txn_stmt(struct il_store *st, enum store_stmt which, const char *op)
{
	sqlite3_stmt *s;
	int r = store_stmt(st, which, &s);
	return r ? r : store_exec(st, s, op);
}

int store_txn_begin(struct il_store *st, const char *op) { return txn_stmt(st, STMT_BEGIN, op); }

int store_txn_commit(struct il_store *st, const char *op) { return txn_stmt(st, STMT_COMMIT, op); }

int store_read_begin(struct il_store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		return 0;
	return txn_stmt(st, STMT_BEGIN_READ, "read_begin") == 0;
}

void store_read_end(struct il_store *st, int begun)
{
	/* A read transaction changed nothing: rolling back cannot fail in a
	 * way that would leave it open and block checkpoints. */
	if (begun)
		store_txn_rollback(st);
}

int store_exec_each(struct il_store *st, enum store_stmt which, const char *key, size_t n,
		    void (*bind)(sqlite3_stmt *s, int idx, const void *items, size_t i),
		    const void *items, const char *op)
{
	if (n == 0)
		return 0;
	int r = store_txn_begin(st, op);
	if (r)
		return r;
	for (size_t i = 0; i < n; i++) {
		sqlite3_stmt *s;
		if ((r = store_stmt(st, which, &s)) != 0)
			goto fail;
		sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
		bind(s, 2, items, i);
		if ((r = store_exec(st, s, op)) != 0)
			goto fail;
	}
	if ((r = store_txn_commit(st, op)) != 0)
		goto fail;
	return 0;
fail:
	store_txn_rollback(st);
	return r;
}

void store_txn_rollback(struct il_store *st)
{
	if (sqlite3_get_autocommit(st->db))
		return;
	/* A failing ROLLBACK leaves nothing better to do: SQLite rolls back
	 * the journal on the next open, and the caller already has an error. */
	(void)txn_stmt(st, STMT_ROLLBACK, "rollback");
}

int store_copy_blob(sqlite3_stmt *s, int col, uint8_t **out, size_t *len)
{
	const void *p = sqlite3_column_blob(s, col);
	size_t n = (size_t)sqlite3_column_bytes(s, col);
	uint8_t *b = malloc(n ? n : 1);
	if (!b)
		return -ENOMEM;
	if (n)
		memcpy(b, p, n);
	*out = b;
	*len = n;
	return 0;
}

int store_bind_id(sqlite3_stmt *s, int idx, const uint8_t *id)
{
	return sqlite3_bind_blob(s, idx, id, IL_SHA256_LEN, SQLITE_STATIC);
}

int store_bind_count(sqlite3_stmt *s, int idx, size_t n)
{
	return sqlite3_bind_int64(s, idx, n > INT64_MAX ? INT64_MAX : (int64_t)n);
}

/* ---------- open, schema, close ---------- */

/* Put the message for the operator in err and return code. */
__attribute__((format(printf, 4, 5)))
static int open_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* An SQLite failure while opening: log it, tell the operator, map the code. */
static int open_sql_fail(struct il_store *st, int rc, char *err, size_t errlen)
{
	int r = store_err(st, rc, "open");
	return open_fail(err, errlen, r, "DB: %s: %s", st->path, sqlite3_errmsg(st->db));
}

/* One text result of a statement run once at open (pragmas, a max). */
int store_pragma_text(sqlite3 *db, const char *sql, char *buf, size_t len)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(s, 0);
		snprintf(buf, len, "%s", t ? (const char *)t : "");
		rc = SQLITE_OK;
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int read_version(struct il_store *st, int64_t *version)
{
	char buf[32];
	int rc = store_pragma_text(st->db, "PRAGMA user_version", buf, sizeof(buf));
	*version = rc == SQLITE_OK ? strtoll(buf, NULL, 10) : 0;
	return rc;
}

static int check_version(struct il_store *st, int64_t version, char *err, size_t errlen)
{
	if (version > IL_STORE_SCHEMA)
		return open_fail(err, errlen, IL_ENEWER,
				 "DB: schema version %" PRId64
				 " is newer than this interlist (%d); refusing to open",
				 version, IL_STORE_SCHEMA);
	if (version < 0)
		return open_fail(err, errlen, IL_EVERSION, "DB: %s: bad schema version %" PRId64,
				 st->path, version);
	return 0;
}

/* Bring the schema from version (read without a lock) to IL_STORE_SCHEMA in
 * one transaction. */
static int store_migrate(struct il_store *st, int64_t version, char *err, size_t errlen)
{
	/* The common case, an up-to-date file, needs no write lock: a relay
	 * busy writing does not delay an interlistctl that opens the store. */
	if (version == IL_STORE_SCHEMA)
		return 0;
	int rc;
	int r = store_txn_begin(st, "migrate");
	if (r)
		return open_fail(err, errlen, r, "DB: %s: cannot lock for migration: %s",
				 st->path, sqlite3_errmsg(st->db));
	/* Again under the lock: another process may have migrated meanwhile. */
	if ((rc = read_version(st, &version)) != SQLITE_OK)
		goto sql_fail;
	if ((r = check_version(st, version, err, errlen)) != 0)
		goto fail;
	for (int64_t v = version; v < IL_STORE_SCHEMA; v++)
		if ((rc = store_migrations[v](st->db)) != SQLITE_OK)
			goto sql_fail;
	/* PRAGMA takes no parameters; the value is our own constant. */
	char sql[48];
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", IL_STORE_SCHEMA);
	if ((rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL)) != SQLITE_OK)
		goto sql_fail;
	r = store_txn_commit(st, "migrate");
	if (r) {
		open_fail(err, errlen, r, "DB: %s: cannot commit schema: %s", st->path,
			  sqlite3_errmsg(st->db));
		goto fail;
	}
	if (version > 0)
		log_info("store", "migrated", "from=%" PRId64 " to=%d", version, IL_STORE_SCHEMA);
	return 0;

sql_fail:
	r = open_sql_fail(st, rc, err, errlen);
fail:
	store_txn_rollback(st);
	return r;
}

/* Create the file ourselves so it is 0600 from the start (SQLite would use
 * 0644 & ~umask); SQLite gives -wal and -shm the main file's mode. *created
 * says whether the folder entry is new and needs an fsync. */
static int create_db_file(const char *path, int *created)
{
	*created = 0;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? 0 : -errno;
	*created = 1;
	close(fd);
	return 0;
}

int store_open(const char *data_dir, struct il_store **out, char *err, size_t errlen)
{
	if (!data_dir || !*data_dir || !out)
		return -EINVAL;
	*out = NULL;
	if (err && errlen)
		err[0] = 0;

	int r = util_mkdirs(data_dir, 0700);
	if (r)
		return open_fail(err, errlen, r, "DB: cannot create %s: %s", data_dir,
				 il_strerror(r));
	struct il_store *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	if (asprintf(&st->path, "%s/%s", data_dir, IL_STORE_FILE) < 0) {
		st->path = NULL;
		r = -ENOMEM;
		goto fail;
	}
	int created;
	r = create_db_file(st->path, &created);
	if (r) {
		open_fail(err, errlen, r, "DB: cannot create %s: %s", st->path, il_strerror(r));
		goto fail;
	}
	/* NOMUTEX: the handle belongs to one thread (store.h), so SQLite's
	 * per-call locking is pure cost. EXRESCODE: extended codes, so
	 * store_err() can tell a full disk inside an IOERR. */
	int rc = sqlite3_open_v2(st->path, &st->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
				 NULL);
	if (rc != SQLITE_OK) {
		r = IL_ESTORE;
		open_fail(err, errlen, r, "DB: cannot open %s: %s", st->path,
			  st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_handler(st->db, store_busy_wait, NULL);

	/* Only takes effect on a new, empty file (the page size is fixed once
	 * the first table exists). 8 KiB rather than the default 4: a 2.5 KiB
	 * envelope leaves 1.5 KiB of a 4 KiB page unused; filling 150k such
	 * messages, 8 KiB pages stored them 25% faster in a file a third
	 * smaller (docs/store.md). */
	rc = sqlite3_exec(st->db, "PRAGMA page_size = " STORE_PAGE_SIZE, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = open_sql_fail(st, rc, err, errlen);
		goto fail;
	}
	/* Before anything that writes: a newer interlist's file is left as it is. */
	int64_t version;
	rc = read_version(st, &version);
	if (rc != SQLITE_OK) {
		r = open_sql_fail(st, rc, err, errlen);
		goto fail;
	}
	if ((r = check_version(st, version, err, errlen)) != 0)
		goto fail;
	/* WAL: readers (backup, an operator's sqlite3) never block the relay,
	 * and a commit is one sequential append + fsync. */
	char mode[16];
	rc = store_pragma_text(st->db, "PRAGMA journal_mode = WAL", mode, sizeof(mode));
	if (rc != SQLITE_OK || strcmp(mode, "wal") != 0) {
		r = rc == SQLITE_OK ? IL_ESTORE : store_err(st, rc, "open");
		open_fail(err, errlen, r, "DB: %s: cannot use WAL mode: %s", st->path,
			  rc == SQLITE_OK ? "filesystem refused it" : sqlite3_errmsg(st->db));
		goto fail;
	}
	/* FULL, not NORMAL: in WAL mode NORMAL skips the fsync at commit, so
	 * the last transactions could vanish on power loss after we acked. */
	char sql[128];
	snprintf(sql, sizeof(sql),
		 "PRAGMA synchronous = FULL; PRAGMA journal_size_limit = %d;"
		 " PRAGMA foreign_keys = OFF",
		 STORE_WAL_LIMIT);
	rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = open_sql_fail(st, rc, err, errlen);
		goto fail;
	}
	r = store_migrate(st, version, err, errlen);
	if (r)
		goto fail;
	char top[32];
	rc = store_pragma_text(st->db, "SELECT coalesce(max(seq), 0) FROM messages", top, sizeof(top));
	st->last_seq = rc == SQLITE_OK ? strtoll(top, NULL, 10) : 0;
	if (rc != SQLITE_OK) {
		r = open_sql_fail(st, rc, err, errlen);
		goto fail;
	}
	/* The WAL's folder entry is synced by SQLite when it creates it; the
	 * main file's we created ourselves. */
	if (created && (r = util_fsync_dir(data_dir)) != 0) {
		open_fail(err, errlen, r, "DB: cannot sync %s: %s", data_dir, il_strerror(r));
		goto fail;
	}
	*out = st;
	return 0;

fail:
	store_close(st);
	return r;
}

void store_close(struct il_store *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < STMT_COUNT_; i++)
		sqlite3_finalize(st->stmt[i]);
	/* The last close checkpoints and removes the WAL: with the database
	 * fsynced first, even in deferred-sync mode. */
	if (st->db)
		sqlite3_exec(st->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
	/* close_v2 would defer the close if a statement were left; all are
	 * finalized, so this is the real close (and the final checkpoint). */
	if (st->db && sqlite3_close(st->db) != SQLITE_OK)
		log_warn("store", "close_failed", "err=%s", log_q(sqlite3_errmsg(st->db)));
	free(st->path);
	free(st);
}

/* ---------- messages ---------- */

/* IL_EDUP for item: which stored message it duplicates. > 0 found (dup_of
 * set), 0 none, < 0 error. */
static int put_find_dup(struct il_store *st, struct store_item *it)
{
	int r = store_has_id(st, it->id, it->origin_time_ms);
	if (r < 0)
		return r;
	if (r > 0) {
		memcpy(it->dup_of, it->id, IL_SHA256_LEN);
		return 1;
	}
	if (!it->message_id)
		return 0;
	uint8_t id[IL_SHA256_LEN];
	r = store_find_msgid(st, it->list, it->message_id, id);
	if (r > 0)
		memcpy(it->dup_of, id, IL_SHA256_LEN);
	return r;
}

/* Insert one item inside the open transaction; sets result, dup_of, seq. */
static int put_one(struct il_store *st, struct store_item *it, int64_t now)
{
	static const uint8_t empty[1];
	sqlite3_stmt *s;
	int r = store_stmt(st, STMT_PUT_MSG, &s);
	if (r)
		return r;
	store_bind_id(s, 1, it->id);
	sqlite3_bind_text(s, 2, it->list, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, it->message_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, it->origin, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, it->origin_time_ms);
	sqlite3_bind_int64(s, 6, now);
	sqlite3_bind_int(s, 7, it->tlp);
	sqlite3_bind_int(s, 8, it->local ? 1 : 0);
	/* A NULL pointer would bind SQL NULL; an empty envelope is still a blob. */
	sqlite3_bind_blob64(s, 9, it->blob_len ? it->blob : empty, it->blob_len, SQLITE_STATIC);
	r = store_exec(st, s, "put");
	if (r)
		return r;
	if (sqlite3_changes(st->db) == 0) {
		/* A unique constraint held: report which message it is. */
		r = put_find_dup(st, it);
		if (r < 0)
			return r;
		if (r == 0) {
			/* Only a unique index we do not know (added by hand)
			 * can get here: refuse rather than report a false dup. */
			log_warn("store", "unknown_conflict", "list=%s", log_q(it->list));
			return IL_ESTORE;
		}
		it->result = IL_EDUP;
		return 0;
	}
	it->seq = sqlite3_last_insert_rowid(st->db);

	for (size_t p = 0; p < it->n_peers; p++) {
		if ((r = store_stmt(st, STMT_PUT_QUEUE, &s)) != 0)
			return r;
		sqlite3_bind_text(s, 1, it->peers[p], -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, it->seq);
		sqlite3_bind_int64(s, 3, now);
		if ((r = store_exec(st, s, "put")) != 0)
			return r;
	}
	if (it->deliver) {
		if ((r = store_stmt(st, STMT_PUT_DELIVERY, &s)) != 0)
			return r;
		sqlite3_bind_text(s, 1, it->list, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, it->seq);
		if ((r = store_exec(st, s, "put")) != 0)
			return r;
	}
	return 0;
}

static int put_check(const struct store_item *it)
{
	if (!it->id || !it->list || (!it->blob && it->blob_len) || (!it->peers && it->n_peers))
		return -EINVAL;
	for (size_t p = 0; p < it->n_peers; p++)
		if (!it->peers[p])
			return -EINVAL;
	return 0;
}

int store_put(struct il_store *st, struct store_item *items, size_t n)
{
	if (!st || (!items && n))
		return -EINVAL;
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (put_check(&items[i]))
			return -EINVAL;
		items[i].result = 0;
		items[i].seq = 0;
		memset(items[i].dup_of, 0, sizeof(items[i].dup_of));
	}
	int64_t now = util_now_ms();
	int r = store_txn_begin(st, "put");
	if (r)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if ((r = put_one(st, &items[i], now)) != 0)
			goto fail_txn;
	if ((r = store_txn_commit(st, "put")) != 0)
		goto fail_txn;
	/* Only now: a rolled back insert's seq may be given out again. */
	for (size_t i = 0; i < n; i++)
		if (items[i].seq > st->last_seq)
			st->last_seq = items[i].seq;
	return 0;

fail_txn:
	store_txn_rollback(st);
fail:
	/* Nothing of the batch is stored: no item may look stored. */
	for (size_t i = 0; i < n; i++) {
		items[i].result = r;
		items[i].seq = 0;
	}
	return r;
}

int64_t store_last_seq(const struct il_store *st)
{
	return st ? st->last_seq : 0;
}

int store_has_id(struct il_store *st, const uint8_t id[IL_SHA256_LEN], int64_t origin_time_ms)
{
	sqlite3_stmt *s;
	int r = store_stmt(st, STMT_SEQ_BY_TID, &s);
	if (r)
		return r;
	store_bind_id(s, 1, id);
	sqlite3_bind_int64(s, 2, origin_time_ms);
	int rc = sqlite3_step(s);
	r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : store_err(st, rc, "has_id");
	store_stmt_done(s);
	return r;
}

int store_find_msgid(struct il_store *st, const char *list, const char *message_id,
		     uint8_t id_out[IL_SHA256_LEN])
{
	if (!list || !message_id)
		return -EINVAL;
	sqlite3_stmt *s;
	int r = store_stmt(st, STMT_ID_BY_MSGID, &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, list, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, message_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		/* The CHECK on messages.id guarantees 32 bytes. */
		memcpy(id_out, sqlite3_column_blob(s, 0), IL_SHA256_LEN);
		r = 1;
	} else {
		r = rc == SQLITE_DONE ? 0 : store_err(st, rc, "find_msgid");
	}
	store_stmt_done(s);
	return r;
}

void store_entries_free(struct store_entry *e, size_t n)
{
	for (size_t i = 0; e && i < n; i++) {
		free(e[i].blob);
		free(e[i].last_error);
		e[i].blob = NULL;
		e[i].last_error = NULL;
	}
}
