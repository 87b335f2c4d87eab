/* Unit tests for the store, on real SQLite files in temporary folders. */
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "il/error.h"
#include "il/store.h"
#include "il/util.h"

/* A fresh data_dir below one temporary folder per run. */
static const char *tmp_root;

static const char *new_dir(const char *name)
{
	static char buf[8][256];
	static int next;
	char *d = buf[next++ % 8];
	snprintf(d, sizeof(buf[0]), "%s/%s", tmp_root, name);
	return d;
}

static struct il_store *open_ok(const char *dir)
{
	char err[256];
	struct il_store *st = NULL;
	int r = store_open(dir, &st, err, sizeof(err));
	if (r) {
		fprintf(stderr, "store_open %s: %s (%s)\n", dir, il_strerror(r), err);
		exit(2);
	}
	return st;
}

/* Deterministic 32-byte id for message number n. */
static void make_id(uint8_t id[IL_SHA256_LEN], uint32_t n)
{
	memset(id, 0xa5, IL_SHA256_LEN);
	util_put_u32(id, n);
}

/* One item with its own storage, so a test can build batches simply. */
struct titem {
	uint8_t id[IL_SHA256_LEN];
	char msgid[64];
	uint8_t blob[64];
};

static const char *const one_peer[] = { "peer-a" };
static const char *const two_peers[] = { "peer-a", "peer-b" };

static void fill(struct store_item *it, struct titem *t, uint32_t n, const char *list,
		 const char *msgid, const char *const *peers, size_t n_peers, int deliver)
{
	make_id(t->id, n);
	snprintf(t->msgid, sizeof(t->msgid), "%s", msgid ? msgid : "");
	for (size_t i = 0; i < sizeof(t->blob); i++)
		t->blob[i] = (uint8_t)(n + i);
	*it = (struct store_item){
		.id = t->id,
		.list = list,
		.message_id = msgid ? t->msgid : NULL,
		.origin = "origin-relay",
		.origin_time_ms = 1700000000000 + n,
		.tlp = 2,
		.blob = t->blob,
		.blob_len = 16 + n % 32,
		.peers = peers,
		.n_peers = n_peers,
		.deliver = deliver,
	};
}

/* Put a single item; returns store_put's code, *result the item's. */
/* Is the message filled with number n stored? (By id and origin time.) */
static int has(struct il_store *st, uint32_t n)
{
	uint8_t id[IL_SHA256_LEN];
	make_id(id, n);
	return store_has_id(st, id, 1700000000000 + n);
}

static int put1(struct il_store *st, uint32_t n, const char *list, const char *msgid,
		const char *const *peers, size_t n_peers, int deliver, int *result, int64_t *seq)
{
	struct titem t;
	struct store_item it;
	fill(&it, &t, n, list, msgid, peers, n_peers, deliver);
	int r = store_put(st, &it, 1);
	if (result)
		*result = it.result;
	if (seq)
		*seq = it.seq;
	return r;
}

/* Run SQL on dir's database through a connection of our own (what an
 * operator's sqlite3 shell would do). */
static int side_sql(const char *dir, const char *sql)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, IL_STORE_FILE);
	sqlite3 *db;
	int rc = sqlite3_open(path, &db);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

/* The first column of the first row of sql on dir's database, or -1. */
static long long side_int(const char *dir, const char *sql)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, IL_STORE_FILE);
	sqlite3 *db;
	sqlite3_stmt *s = NULL;
	long long v = -1;
	if (sqlite3_open(path, &db) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static void test_open(void)
{
	const char *dir = new_dir("open/deeper/data");
	struct il_store *st = open_ok(dir);
	struct stat sb;
	CHECK_EQ(stat(dir, &sb), 0);
	CHECK_EQ(sb.st_mode & 0777, 0700);
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, IL_STORE_FILE);
	CHECK_EQ(stat(path, &sb), 0);
	CHECK_EQ(sb.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/%s-wal", dir, IL_STORE_FILE);
	CHECK_EQ(stat(path, &sb), 0);           /* WAL mode */
	CHECK_EQ(sb.st_mode & 0777, 0600);

	uint64_t msgs = 1, bytes = 0;
	CHECK_EQ(store_size(st, &msgs, &bytes), 0);
	CHECK_EQ(msgs, 0);
	CHECK(bytes > 0);
	store_close(st);

	/* Reopen an existing, current database. */
	st = open_ok(dir);
	store_close(st);

	/* The schema version is recorded for the next interlist, and new
	 * files get the page size docs/store.md explains. */
	CHECK_EQ(side_int(dir, "PRAGMA user_version"), IL_STORE_SCHEMA);
	CHECK_EQ(side_int(dir, "PRAGMA page_size"), 8192);
}

static void test_newer(void)
{
	const char *dir = new_dir("newer");
	store_close(open_ok(dir));
	CHECK_EQ(side_sql(dir, "PRAGMA user_version = 99"), SQLITE_OK);

	char err[256] = "";
	struct il_store *st = (struct il_store *)1;
	CHECK_EQ(store_open(dir, &st, err, sizeof(err)), IL_ENEWER);
	CHECK(st == NULL);
	char want[128];
	snprintf(want, sizeof(want),
		 "DB: schema version 99 is newer than this interlist (%d); refusing to open",
		 IL_STORE_SCHEMA);
	CHECK_STR(err, want);

	CHECK_EQ(side_sql(dir, "PRAGMA user_version = -1"), SQLITE_OK);
	CHECK_EQ(store_open(dir, &st, err, sizeof(err)), IL_EVERSION);

	/* A failed migration leaves the file as it was (version 0). */
	const char *half = new_dir("half");
	CHECK_EQ(util_mkdirs(half, 0700), 0);
	CHECK_EQ(side_sql(half, "CREATE TABLE messages (x)"), SQLITE_OK);
	CHECK_EQ(store_open(half, &st, err, sizeof(err)), IL_ESTORE);
	CHECK(strstr(err, "already exists") != NULL);
	CHECK_EQ(side_int(half, "SELECT count(*) FROM sqlite_schema"), 1);
	CHECK_EQ(side_int(half, "PRAGMA user_version"), 0);

	/* data_dir below a regular file. */
	char below[512];
	snprintf(below, sizeof(below), "%s/%s/sub", dir, IL_STORE_FILE);
	CHECK_EQ(store_open(below, &st, err, sizeof(err)), -ENOTDIR);
	CHECK(strncmp(err, "DB: cannot create ", 18) == 0);

	/* Not a database at all: a clear error, not a crash. */
	const char *bad = new_dir("notdb");
	CHECK_EQ(util_mkdirs(bad, 0700), 0);
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", bad, IL_STORE_FILE);
	FILE *f = fopen(path, "w");
	fputs("this is not an SQLite database, it is text long enough to have a header\n", f);
	fclose(f);
	CHECK(store_open(bad, &st, err, sizeof(err)) < 0);
	CHECK(st == NULL);
	CHECK(strncmp(err, "DB: ", 4) == 0);
}

static void test_put(void)
{
	struct il_store *st = open_ok(new_dir("put"));
	struct titem t[6];
	struct store_item it[6];
	fill(&it[0], &t[0], 1, "list-a", "<m1@x>", one_peer, 1, 1);
	fill(&it[1], &t[1], 2, "list-a", "<m2@x>", one_peer, 1, 1);
	fill(&it[2], &t[2], 3, "list-a", NULL, one_peer, 1, 0);
	fill(&it[3], &t[3], 4, "list-a", NULL, NULL, 0, 0);
	/* Same Message-ID on another list is another message. */
	fill(&it[4], &t[4], 5, "list-b", "<m1@x>", NULL, 0, 0);
	CHECK_EQ(store_put(st, it, 5), 0);
	for (int i = 0; i < 5; i++) {
		CHECK_EQ(it[i].result, 0);
		CHECK(it[i].seq > 0);
		if (i)
			CHECK(it[i].seq > it[i - 1].seq);
	}
	CHECK_EQ(has(st, 1), 1);
	CHECK_EQ(has(st, 999), 0);
	uint8_t id[IL_SHA256_LEN], other[IL_SHA256_LEN];
	make_id(other, 999);
	/* The right id with another origin time is another message. */
	CHECK_EQ(store_has_id(st, t[0].id, 1700000000000 + 2), 0);
	CHECK_EQ(store_find_msgid(st, "list-a", "<m2@x>", id), 1);
	CHECK(memcmp(id, t[1].id, IL_SHA256_LEN) == 0);
	CHECK_EQ(store_find_msgid(st, "list-b", "<m1@x>", id), 1);
	CHECK(memcmp(id, t[4].id, IL_SHA256_LEN) == 0);
	CHECK_EQ(store_find_msgid(st, "list-c", "<m1@x>", id), 0);

	/* Duplicate by id (even with other fields changed). */
	fill(&it[0], &t[0], 1, "list-z", "<other@x>", one_peer, 1, 1);
	/* Duplicate by list + Message-ID under a new id. */
	fill(&it[1], &t[1], 10, "list-a", "<m2@x>", one_peer, 1, 1);
	/* New, then the same id again and the same list + Message-ID again
	 * within one batch. */
	fill(&it[2], &t[2], 11, "list-a", "<m11@x>", one_peer, 1, 1);
	fill(&it[3], &t[3], 11, "list-a", "<m11-again@x>", one_peer, 1, 1);
	fill(&it[4], &t[4], 12, "list-a", "<m11@x>", one_peer, 1, 1);
	fill(&it[5], &t[5], 13, "list-a", NULL, one_peer, 1, 1);
	uint64_t q_before = 0, p_before = 0;
	CHECK_EQ(store_queue_stats(st, "peer-a", &q_before, NULL), 0);
	CHECK_EQ(store_deliver_stats(st, "list-a", &p_before, NULL), 0);
	CHECK_EQ(q_before, 3);
	CHECK_EQ(p_before, 2);
	CHECK_EQ(store_put(st, it, 6), 0);
	uint8_t want[IL_SHA256_LEN];
	CHECK_EQ(it[0].result, IL_EDUP);
	make_id(want, 1);
	CHECK(memcmp(it[0].dup_of, want, IL_SHA256_LEN) == 0);
	CHECK_EQ(it[0].seq, 0);
	CHECK_EQ(it[1].result, IL_EDUP);
	make_id(want, 2);
	CHECK(memcmp(it[1].dup_of, want, IL_SHA256_LEN) == 0);
	CHECK_EQ(it[2].result, 0);
	CHECK_EQ(it[3].result, IL_EDUP);
	CHECK(memcmp(it[3].dup_of, t[2].id, IL_SHA256_LEN) == 0);
	CHECK_EQ(it[4].result, IL_EDUP);
	CHECK(memcmp(it[4].dup_of, t[2].id, IL_SHA256_LEN) == 0);
	CHECK_EQ(it[5].result, 0);
	CHECK(it[5].seq > it[2].seq);
	/* Duplicates queue nothing and add no delivery. */
	uint64_t q = 0, p = 0;
	CHECK_EQ(store_queue_stats(st, "peer-a", &q, NULL), 0);
	CHECK_EQ(store_deliver_stats(st, "list-a", &p, NULL), 0);
	CHECK_EQ(q, q_before + 2);
	CHECK_EQ(p, p_before + 2);
	CHECK_EQ(has(st, 10), 0);

	/* Bad input is refused before anything is written. */
	fill(&it[0], &t[0], 20, "list-a", NULL, NULL, 0, 0);
	it[0].list = NULL;
	CHECK_EQ(store_put(st, it, 1), -EINVAL);
	CHECK_EQ(store_put(st, NULL, 0), 0);
	/* An empty blob is a blob, not NULL. */
	fill(&it[0], &t[0], 21, "list-a", NULL, NULL, 0, 0);
	it[0].blob = NULL;
	it[0].blob_len = 0;
	CHECK_EQ(store_put(st, it, 1), 0);
	CHECK_EQ(it[0].result, 0);

	uint64_t msgs = 0;
	CHECK_EQ(store_size(st, &msgs, NULL), 0);
	CHECK_EQ(msgs, 8);
	store_close(st);
}

/* A failure in the middle of a batch stores nothing of it. */
static void test_put_rollback(void)
{
	const char *dir = new_dir("rollback");
	struct il_store *st = open_ok(dir);
	/* A trigger stands in for a disk error on the second item. */
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, IL_STORE_FILE);
	sqlite3 *db;
	CHECK_EQ(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ(sqlite3_exec(db,
			      "CREATE TRIGGER boom BEFORE INSERT ON messages WHEN NEW.list = 'boom'"
			      " BEGIN SELECT RAISE(ABORT, 'injected'); END",
			      NULL, NULL, NULL),
		 SQLITE_OK);
	struct titem t[3];
	struct store_item it[3];
	fill(&it[0], &t[0], 1, "list-a", "<a@x>", one_peer, 1, 1);
	fill(&it[1], &t[1], 2, "boom", NULL, one_peer, 1, 1);
	fill(&it[2], &t[2], 3, "list-a", NULL, one_peer, 1, 1);
	/* The cached statements were prepared before the trigger existed;
	 * SQLite re-prepares them, which this also covers. */
	CHECK_EQ(store_last_seq(st), 0);
	CHECK_EQ(store_put(st, it, 3), IL_ESTORE);
	CHECK_EQ(it[0].result, IL_ESTORE);
	CHECK_EQ(it[0].seq, 0);
	CHECK_EQ(store_last_seq(st), 0);        /* nothing committed */
	CHECK_EQ(has(st, 1), 0);
	uint64_t q = 9;
	CHECK_EQ(store_queue_stats(st, "peer-a", &q, NULL), 0);
	CHECK_EQ(q, 0);

	/* Another writer holding the lock: busy means "try later". */
	CHECK_EQ(sqlite3_exec(db, "DROP TRIGGER boom; BEGIN IMMEDIATE", NULL, NULL, NULL),
		 SQLITE_OK);
	CHECK_EQ(put1(st, 4, "list-a", NULL, NULL, 0, 0, NULL, NULL), IL_EFULL);
	CHECK_EQ(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	/* The handle is still usable afterwards. */
	CHECK_EQ(store_put(st, it, 1), 0);
	CHECK_EQ(it[0].result, 0);
	CHECK_EQ(store_last_seq(st), it[0].seq);
	store_close(st);
	/* Reopened, the watermark's start is the highest seq on file. */
	st = open_ok(dir);
	CHECK_EQ(store_last_seq(st), it[0].seq);
	store_close(st);
}

/* Batch writes other than put are one transaction too: a failure on the
 * second element undoes the first. */
static void test_batch_atomic(void)
{
	const char *dir = new_dir("atomic");
	struct il_store *st = open_ok(dir);
	struct titem t[2];
	struct store_item it[2];
	fill(&it[0], &t[0], 1, "list-a", NULL, one_peer, 1, 1);
	fill(&it[1], &t[1], 2, "list-a", NULL, one_peer, 1, 1);
	CHECK_EQ(store_put(st, it, 2), 0);
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "CREATE TRIGGER no_q BEFORE DELETE ON peer_queue WHEN OLD.seq = %lld"
		 " BEGIN SELECT RAISE(ABORT, 'injected'); END;"
		 "CREATE TRIGGER no_d BEFORE DELETE ON deliveries WHEN OLD.seq = %lld"
		 " BEGIN SELECT RAISE(ABORT, 'injected'); END;"
		 "CREATE TRIGGER no_u BEFORE UPDATE ON deliveries WHEN OLD.seq = %lld"
		 " BEGIN SELECT RAISE(ABORT, 'injected'); END;",
		 (long long)it[1].seq, (long long)it[1].seq, (long long)it[1].seq);
	CHECK_EQ(side_sql(dir, sql), SQLITE_OK);

	int64_t seqs[2] = { it[0].seq, it[1].seq };
	CHECK_EQ(store_queue_ack(st, "peer-a", seqs, 2), IL_ESTORE);
	CHECK_EQ(store_deliver_done(st, "list-a", seqs, 2), IL_ESTORE);
	struct store_entry e[2];
	size_t n = 9;
	CHECK_EQ(store_queue_expire(st, INT64_MAX, NULL, NULL), IL_ESTORE);
	CHECK_EQ(store_deliver_defer(st, "list-a", it[1].seq, 0, "x"), IL_ESTORE);
	CHECK_EQ(store_deliver_park(st, "list-a", it[1].seq, "x"), IL_ESTORE);
	uint64_t q = 0, pending = 0, failed = 9;
	CHECK_EQ(store_queue_stats(st, "peer-a", &q, NULL), 0);
	CHECK_EQ(q, 2);
	CHECK_EQ(store_deliver_stats(st, "list-a", &pending, &failed), 0);
	CHECK_EQ(pending, 2);
	CHECK_EQ(failed, 0);
	CHECK_EQ(store_deliver_fetch(st, "list-a", 0, INT64_MAX, 2, NULL, 0, e, &n), 0);
	CHECK_EQ(n, 2);
	CHECK_EQ(e[1].attempts, 0);
	store_entries_free(e, n);
	store_close(st);
}

struct expire_seen {
	char peer[4][32];
	uint64_t n[4];
	int calls;
};

static void expire_cb(void *arg, const char *peer, uint64_t n)
{
	struct expire_seen *x = arg;
	if (x->calls < 4) {
		snprintf(x->peer[x->calls], sizeof(x->peer[0]), "%s", peer);
		x->n[x->calls] = n;
	}
	x->calls++;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static void test_queue(void)
{
	struct il_store *st = open_ok(new_dir("queue"));
	int64_t t0 = util_now_ms();
	struct titem t[10];
	struct store_item it[10];
	for (uint32_t i = 0; i < 10; i++)
		fill(&it[i], &t[i], 100 + i, "list-a", NULL, i < 6 ? two_peers : one_peer,
		     i < 6 ? 2 : 1, 0);
	CHECK_EQ(store_put(st, it, 10), 0);

	struct store_entry e[10];
	size_t n = 0;
	CHECK_EQ(store_queue_fetch(st, "peer-a", 0, 10, SIZE_MAX, e, &n), 0);
	CHECK_EQ(n, 10);
	for (size_t i = 0; i < n; i++) {
		CHECK_EQ(e[i].seq, it[i].seq);
		CHECK(memcmp(e[i].id, t[i].id, IL_SHA256_LEN) == 0);
		CHECK_EQ(e[i].blob_len, it[i].blob_len);
		CHECK(memcmp(e[i].blob, t[i].blob, it[i].blob_len) == 0);
		CHECK(e[i].queued_ms >= t0 && e[i].queued_ms <= util_now_ms());
		CHECK(e[i].last_error == NULL);
	}
	store_entries_free(e, n);

	/* Limits: count, bytes (at least one), and the after_seq cursor. */
	CHECK_EQ(store_queue_fetch(st, "peer-a", 0, 3, SIZE_MAX, e, &n), 0);
	CHECK_EQ(n, 3);
	CHECK_EQ(e[2].seq, it[2].seq);
	store_entries_free(e, n);
	size_t two = it[0].blob_len + it[1].blob_len;
	CHECK_EQ(store_queue_fetch(st, "peer-a", 0, 10, two, e, &n), 0);
	CHECK_EQ(n, 2);
	store_entries_free(e, n);
	CHECK_EQ(store_queue_fetch(st, "peer-a", 0, 10, 1, e, &n), 0);
	CHECK_EQ(n, 1);
	store_entries_free(e, n);
	CHECK_EQ(store_queue_fetch(st, "peer-a", it[7].seq, 10, SIZE_MAX, e, &n), 0);
	CHECK_EQ(n, 2);
	CHECK_EQ(e[0].seq, it[8].seq);
	store_entries_free(e, n);
	CHECK_EQ(store_queue_fetch(st, "peer-b", 0, 10, SIZE_MAX, e, &n), 0);
	CHECK_EQ(n, 6);
	store_entries_free(e, n);
	CHECK_EQ(store_queue_fetch(st, "nobody", 0, 10, SIZE_MAX, e, &n), 0);
	CHECK_EQ(n, 0);
	CHECK_EQ(store_queue_fetch(st, "peer-a", 0, 0, SIZE_MAX, NULL, &n), 0);
	CHECK_EQ(n, 0);

	/* Stats. */
	uint64_t count = 0;
	int64_t oldest = 0;
	CHECK_EQ(store_queue_stats(st, "peer-a", &count, &oldest), 0);
	CHECK_EQ(count, 10);
	CHECK(oldest >= t0 && oldest <= util_now_ms());
	CHECK_EQ(store_queue_stats(st, "nobody", &count, &oldest), 0);
	CHECK_EQ(count, 0);
	CHECK_EQ(oldest, 0);

	/* Ack is per peer, by seq, idempotent, unknown seqs ignored. */
	int64_t acks[3] = { it[0].seq, it[1].seq, 424242 };
	CHECK_EQ(store_queue_ack(st, "peer-a", acks, 3), 0);
	CHECK_EQ(store_queue_ack(st, "peer-a", acks, 3), 0);
	CHECK_EQ(store_queue_stats(st, "peer-a", &count, NULL), 0);
	CHECK_EQ(count, 8);
	CHECK_EQ(store_queue_stats(st, "peer-b", &count, NULL), 0);
	CHECK_EQ(count, 6);
	CHECK_EQ(store_queue_fetch(st, "peer-a", 0, 1, SIZE_MAX, e, &n), 0);
	CHECK_EQ(e[0].seq, it[2].seq);
	store_entries_free(e, n);

	/* Purge one, then all. */
	uint64_t removed = 0;
	CHECK_EQ(store_queue_purge(st, "peer-a", t[2].id, &removed), 0);
	CHECK_EQ(removed, 1);
	CHECK_EQ(store_queue_purge(st, "peer-a", t[2].id, &removed), 0);
	CHECK_EQ(removed, 0);
	CHECK_EQ(store_queue_purge(st, "peer-a", NULL, &removed), 0);
	CHECK_EQ(removed, 7);
	CHECK_EQ(store_queue_stats(st, "peer-a", &count, NULL), 0);
	CHECK_EQ(count, 0);
	CHECK_EQ(store_queue_stats(st, "peer-b", &count, NULL), 0);
	CHECK_EQ(count, 6);

	/* Expiry: drops only what was queued before the cutoff, per peer. */
	sleep_ms(5);
	int64_t cutoff = util_now_ms();
	sleep_ms(5);
	for (uint32_t i = 0; i < 3; i++)
		fill(&it[i], &t[i], 200 + i, "list-a", NULL, two_peers, 2, 0);
	CHECK_EQ(store_put(st, it, 3), 0);
	struct expire_seen x = { 0 };
	CHECK_EQ(store_queue_expire(st, cutoff, expire_cb, &x), 0);
	CHECK_EQ(x.calls, 1);
	CHECK_STR(x.peer[0], "peer-b");
	CHECK_EQ(x.n[0], 6);
	CHECK_EQ(store_queue_stats(st, "peer-a", &count, &oldest), 0);
	CHECK_EQ(count, 3);
	CHECK(oldest > cutoff);
	CHECK_EQ(store_queue_stats(st, "peer-b", &count, NULL), 0);
	CHECK_EQ(count, 3);
	memset(&x, 0, sizeof(x));
	CHECK_EQ(store_queue_expire(st, cutoff, expire_cb, &x), 0);
	CHECK_EQ(x.calls, 0);
	CHECK_EQ(store_queue_expire(st, util_now_ms() + 1, expire_cb, &x), 0);
	CHECK_EQ(x.calls, 2);
	CHECK_STR(x.peer[0], "peer-a");
	CHECK_EQ(x.n[0], 3);
	CHECK_STR(x.peer[1], "peer-b");
	CHECK_EQ(x.n[1], 3);
	store_close(st);
}

static int fetch_seqs(struct il_store *st, const char *list, int64_t now, size_t max_n,
		      const int64_t *skip, size_t n_skip, int64_t *seqs)
{
	struct store_entry e[16];
	size_t n = 0;
	if (max_n > 16)
		max_n = 16;
	int r = store_deliver_fetch(st, list, now, INT64_MAX, max_n, skip, n_skip, e, &n);
	if (r)
		return r;
	for (size_t i = 0; i < n; i++)
		seqs[i] = e[i].seq;
	store_entries_free(e, n);
	return (int)n;
}

static void test_deliver(void)
{
	const char *dir = new_dir("deliver");
	struct il_store *st = open_ok(dir);
	struct titem t[6];
	struct store_item it[6];
	for (uint32_t i = 0; i < 6; i++)
		fill(&it[i], &t[i], 300 + i, i < 5 ? "list-a" : "list-b", NULL, NULL, 0, 1);
	CHECK_EQ(store_put(st, it, 6), 0);
	int64_t s0 = it[0].seq, s1 = it[1].seq, s2 = it[2].seq, s3 = it[3].seq, s4 = it[4].seq;

	struct store_entry e[8];
	size_t n = 0;
	int64_t now = util_now_ms();
	CHECK_EQ(store_deliver_fetch(st, "list-a", now, INT64_MAX, 8, NULL, 0, e, &n), 0);
	CHECK_EQ(n, 5);
	CHECK_EQ(e[0].seq, s0);
	CHECK(memcmp(e[0].id, t[0].id, IL_SHA256_LEN) == 0);
	CHECK_EQ(e[0].blob_len, it[0].blob_len);
	CHECK(memcmp(e[0].blob, t[0].blob, e[0].blob_len) == 0);
	CHECK_EQ(e[0].attempts, 0);
	CHECK(e[0].last_error == NULL);
	CHECK(e[0].queued_ms > 0);
	store_entries_free(e, n);

	/* The in-flight set is skipped, and the limit still fills up. */
	int64_t seqs[16];
	int64_t skip[] = { s0, s2 };
	CHECK_EQ(fetch_seqs(st, "list-a", now, 2, skip, 2, seqs), 2);
	CHECK_EQ(seqs[0], s1);
	CHECK_EQ(seqs[1], s3);
	CHECK_EQ(fetch_seqs(st, "list-a", now, 16, skip, 2, seqs), 3);

	/* The durable watermark: nothing above max_seq (committed, not yet
	 * on disk) is handed out; store_last_seq is the batch's last. */
	CHECK_EQ(store_last_seq(st), it[5].seq);
	CHECK_EQ(store_deliver_fetch(st, "list-a", now, s1, 8, NULL, 0, e, &n), 0);
	CHECK_EQ(n, 2);
	CHECK_EQ(e[1].seq, s1);
	store_entries_free(e, n);
	CHECK_EQ(store_deliver_fetch(st, "list-a", now, s0 - 1, 8, NULL, 0, e, &n), 0);
	CHECK_EQ(n, 0);

	/* Done: never fetched again. */
	int64_t done[] = { s0, s1 };
	CHECK_EQ(store_deliver_done(st, "list-a", done, 2), 0);
	CHECK_EQ(store_deliver_done(st, "list-a", done, 2), 0);   /* idempotent */
	CHECK_EQ(fetch_seqs(st, "list-a", now, 16, NULL, 0, seqs), 3);
	CHECK_EQ(seqs[0], s2);

	/* Defer: not due before next_try, then due with the error and count. */
	CHECK_EQ(store_deliver_defer(st, "list-a", s2, now + 60000, "451 try later"), 0);
	CHECK_EQ(fetch_seqs(st, "list-a", now, 16, NULL, 0, seqs), 2);
	CHECK_EQ(seqs[0], s3);
	CHECK_EQ(store_deliver_fetch(st, "list-a", now + 60000, INT64_MAX, 1, NULL, 0, e, &n), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(e[0].seq, s2);
	CHECK_EQ(e[0].attempts, 1);
	CHECK_STR(e[0].last_error, "451 try later");
	store_entries_free(e, n);
	CHECK_EQ(store_deliver_defer(st, "list-a", s0, now, "x"), -ENOENT);  /* done */

	/* Park: listed as failed, not fetched. */
	CHECK_EQ(store_deliver_park(st, "list-a", s3, "550 no such list"), 0);
	CHECK_EQ(store_deliver_park(st, "list-a", s3, "again"), -ENOENT);
	CHECK_EQ(store_deliver_park(st, "list-a", s4, "550 too big"), 0);
	CHECK_EQ(fetch_seqs(st, "list-a", now + 60000, 16, NULL, 0, seqs), 1);
	CHECK_EQ(seqs[0], s2);
	uint64_t pending = 0, failed = 0;
	CHECK_EQ(store_deliver_stats(st, "list-a", &pending, &failed), 0);
	CHECK_EQ(pending, 1);
	CHECK_EQ(failed, 2);
	CHECK_EQ(store_deliver_stats(st, "list-b", &pending, &failed), 0);
	CHECK_EQ(pending, 1);
	CHECK_EQ(failed, 0);
	CHECK_EQ(store_deliver_failed(st, "list-a", 8, e, &n), 0);
	CHECK_EQ(n, 2);
	CHECK_EQ(e[0].seq, s3);
	CHECK_EQ(e[0].attempts, 1);
	CHECK_STR(e[0].last_error, "550 no such list");
	CHECK(memcmp(e[1].id, t[4].id, IL_SHA256_LEN) == 0);
	store_entries_free(e, n);
	CHECK_EQ(store_deliver_failed(st, "list-a", 1, e, &n), 0);
	CHECK_EQ(n, 1);
	store_entries_free(e, n);

	/* Closed and reopened: done stays done, deferred stays deferred,
	 * parked stays parked. */
	store_close(st);
	st = open_ok(dir);
	CHECK_EQ(fetch_seqs(st, "list-a", now, 16, NULL, 0, seqs), 0);
	CHECK_EQ(fetch_seqs(st, "list-a", now + 60000, 16, NULL, 0, seqs), 1);
	CHECK_EQ(store_deliver_stats(st, "list-a", &pending, &failed), 0);
	CHECK_EQ(failed, 2);

	/* Retry one by id, then all. */
	uint64_t count = 0;
	CHECK_EQ(store_deliver_retry(st, "list-a", t[3].id, &count), 0);
	CHECK_EQ(count, 1);
	CHECK_EQ(store_deliver_retry(st, "list-a", t[3].id, &count), 0);
	CHECK_EQ(count, 0);
	CHECK_EQ(store_deliver_retry(st, "list-b", t[4].id, &count), 0);  /* other list */
	CHECK_EQ(count, 0);
	CHECK_EQ(fetch_seqs(st, "list-a", now, 16, NULL, 0, seqs), 1);
	CHECK_EQ(seqs[0], s3);
	CHECK_EQ(store_deliver_fetch(st, "list-a", now, INT64_MAX, 1, NULL, 0, e, &n), 0);
	CHECK_EQ(e[0].attempts, 0);          /* a retry starts a fresh backoff */
	store_entries_free(e, n);
	CHECK_EQ(store_deliver_retry(st, "list-a", NULL, &count), 0);
	CHECK_EQ(count, 1);
	CHECK_EQ(store_deliver_stats(st, "list-a", &pending, &failed), 0);
	CHECK_EQ(pending, 3);
	CHECK_EQ(failed, 0);
	int64_t rest[] = { s2, s3, s4 };
	CHECK_EQ(store_deliver_done(st, "list-a", rest, 3), 0);
	store_close(st);
	st = open_ok(dir);
	CHECK_EQ(fetch_seqs(st, "list-a", INT64_MAX, 16, NULL, 0, seqs), 0);
	CHECK_EQ(fetch_seqs(st, "list-b", INT64_MAX, 16, NULL, 0, seqs), 1);
	store_close(st);
}

static void test_prune(void)
{
	struct il_store *st = open_ok(new_dir("prune"));
	int64_t seq[6];
	CHECK_EQ(put1(st, 1, "l", "<1@x>", NULL, 0, 0, NULL, &seq[1]), 0);  /* unreferenced */
	CHECK_EQ(put1(st, 2, "l", NULL, one_peer, 1, 0, NULL, &seq[2]), 0); /* queued */
	CHECK_EQ(put1(st, 3, "l", NULL, NULL, 0, 1, NULL, &seq[3]), 0);     /* pending */
	CHECK_EQ(put1(st, 4, "l", NULL, NULL, 0, 1, NULL, &seq[4]), 0);     /* parked */
	CHECK_EQ(put1(st, 5, "l", NULL, NULL, 0, 1, NULL, &seq[5]), 0);     /* delivered */
	CHECK_EQ(store_deliver_park(st, "l", seq[4], "550"), 0);
	CHECK_EQ(store_deliver_done(st, "l", &seq[5], 1), 0);

	uint64_t removed = 9;
	CHECK_EQ(store_prune(st, util_now_ms() - 60000, &removed), 0);   /* all too young */
	CHECK_EQ(removed, 0);
	sleep_ms(2);
	int64_t cutoff = util_now_ms();
	sleep_ms(2);
	CHECK_EQ(put1(st, 6, "l", NULL, NULL, 0, 0, NULL, NULL), 0);      /* after cutoff */
	CHECK_EQ(store_prune(st, cutoff, &removed), 0);
	CHECK_EQ(removed, 2);
	uint8_t id[IL_SHA256_LEN];
	for (uint32_t i = 1; i <= 6; i++)
		CHECK_EQ(has(st, i), i == 1 || i == 5 ? 0 : 1);
	/* Its list + Message-ID is free again once the message is gone. */
	CHECK_EQ(store_find_msgid(st, "l", "<1@x>", id), 0);
	uint64_t msgs = 0;
	CHECK_EQ(store_size(st, &msgs, NULL), 0);
	CHECK_EQ(msgs, 4);

	/* A pruned seq is never handed out again (peers' cursors rely on it). */
	int64_t s7 = 0;
	CHECK_EQ(store_prune(st, INT64_MAX, &removed), 0);
	CHECK_EQ(removed, 1);                                 /* message 6 */
	CHECK_EQ(put1(st, 7, "l", NULL, NULL, 0, 0, NULL, &s7), 0);
	CHECK(s7 > seq[5] + 1);
	store_close(st);
}

static void test_reopen_backup(void)
{
	const char *dir = new_dir("persist");
	struct il_store *st = open_ok(dir);
	struct titem t[4];
	struct store_item it[4];
	for (uint32_t i = 0; i < 4; i++)
		fill(&it[i], &t[i], 400 + i, "list-p", "<p@x>", two_peers, 2, 1);
	snprintf(t[1].msgid, sizeof(t[1].msgid), "<p1@x>");
	snprintf(t[2].msgid, sizeof(t[2].msgid), "<p2@x>");
	it[3].message_id = NULL;
	CHECK_EQ(store_put(st, it, 4), 0);
	CHECK_EQ(store_deliver_park(st, "list-p", it[1].seq, "550 nope"), 0);
	CHECK_EQ(store_queue_ack(st, "peer-b", &it[0].seq, 1), 0);

	/* Backup refuses an existing path, then copies. */
	char bdir[512], bpath[600];
	snprintf(bdir, sizeof(bdir), "%s/backup", tmp_root);
	CHECK_EQ(util_mkdirs(bdir, 0700), 0);
	snprintf(bpath, sizeof(bpath), "%s/%s", bdir, IL_STORE_FILE);
	char err[256];
	CHECK_EQ(store_backup(st, bdir, err, sizeof(err)), -EEXIST);
	CHECK(strstr(err, "backup") != NULL);
	CHECK_EQ(store_backup(st, bpath, err, sizeof(err)), 0);
	struct stat sb;
	CHECK_EQ(stat(bpath, &sb), 0);
	CHECK_EQ(sb.st_mode & 0777, 0600);
	CHECK_EQ(store_backup(st, bpath, err, sizeof(err)), -EEXIST);
	store_close(st);

	for (int pass = 0; pass < 2; pass++) {
		st = open_ok(pass == 0 ? dir : bdir);
		uint64_t msgs = 0, count = 0, pending = 0, failed = 0;
		CHECK_EQ(store_size(st, &msgs, NULL), 0);
		CHECK_EQ(msgs, 4);
		for (uint32_t i = 0; i < 4; i++)
			CHECK_EQ(has(st, 400 + i), 1);
		uint8_t id[IL_SHA256_LEN];
		CHECK_EQ(store_find_msgid(st, "list-p", "<p2@x>", id), 1);
		CHECK(memcmp(id, t[2].id, IL_SHA256_LEN) == 0);
		CHECK_EQ(store_queue_stats(st, "peer-a", &count, NULL), 0);
		CHECK_EQ(count, 4);
		CHECK_EQ(store_queue_stats(st, "peer-b", &count, NULL), 0);
		CHECK_EQ(count, 3);
		CHECK_EQ(store_deliver_stats(st, "list-p", &pending, &failed), 0);
		CHECK_EQ(pending, 3);
		CHECK_EQ(failed, 1);
		struct store_entry e[4];
		size_t n = 0;
		CHECK_EQ(store_queue_fetch(st, "peer-b", 0, 4, SIZE_MAX, e, &n), 0);
		CHECK_EQ(n, 3);
		CHECK_EQ(e[0].seq, it[1].seq);
		CHECK(memcmp(e[0].blob, t[1].blob, e[0].blob_len) == 0);
		store_entries_free(e, n);
		/* Sequence numbers continue after the stored ones. */
		int64_t seq = 0;
		CHECK_EQ(put1(st, 500 + pass, "list-p", NULL, NULL, 0, 0, NULL, &seq), 0);
		CHECK(seq > it[3].seq);
		store_close(st);
	}
}

/*
 * Durability: a child puts 1000 messages in batches and reports each batch
 * after store_put returned; the parent kills it with SIGKILL mid-stream. Every
 * reported message must be there after a reopen. (A kill leaves the page
 * cache intact, so this proves atomicity and that nothing waits in our
 * buffers; the fsync half is synchronous=FULL, see docs/store.md.)
 */
static void test_durability(void)
{
	const char *dir = new_dir("crash");
	enum { TOTAL = 1000, BATCH = 10, KILL_AFTER = 300 };
	int pfd[2];
	CHECK_EQ(pipe(pfd), 0);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		struct il_store *st = open_ok(dir);
		for (uint32_t done = 0; done < TOTAL; done += BATCH) {
			struct titem t[BATCH];
			struct store_item it[BATCH];
			for (uint32_t i = 0; i < BATCH; i++)
				fill(&it[i], &t[i], done + i, "list-d", NULL, one_peer, 1, 1);
			if (store_put(st, it, BATCH) != 0)
				_exit(3);
			uint32_t acked = done + BATCH;
			if (write(pfd[1], &acked, sizeof(acked)) != sizeof(acked))
				_exit(4);
		}
		_exit(0);
	}
	CHECK(pid > 0);
	close(pfd[1]);
	uint32_t acked = 0, v;
	int killed = 0;
	while (read(pfd[0], &v, sizeof(v)) == sizeof(v)) {
		acked = v;
		if (!killed && acked >= KILL_AFTER) {
			kill(pid, SIGKILL);
			killed = 1;
		}
	}
	close(pfd[0]);
	int status = 0;
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	CHECK(acked >= KILL_AFTER && acked < TOTAL);

	struct il_store *st = open_ok(dir);
	uint8_t id[IL_SHA256_LEN];
	uint32_t missing = 0;
	for (uint32_t i = 0; i < acked; i++) {
		make_id(id, i);
		if (store_has_id(st, id, 1700000000000 + i) != 1)
			missing++;
	}
	CHECK_EQ(missing, 0);
	/* Whole batches only: what is there beyond the last report is complete. */
	uint64_t msgs = 0, q = 0, pending = 0;
	CHECK_EQ(store_size(st, &msgs, NULL), 0);
	CHECK_EQ(msgs % BATCH, 0);
	CHECK(msgs >= acked);
	CHECK_EQ(store_queue_stats(st, "peer-a", &q, NULL), 0);
	CHECK_EQ(store_deliver_stats(st, "list-d", &pending, NULL), 0);
	CHECK_EQ(q, msgs);
	CHECK_EQ(pending, msgs);
	fprintf(stderr, "test_store: durability: killed after %u acked, %llu stored\n", acked,
		(unsigned long long)msgs);
	store_close(st);
}

/* Deferred mode counts the WAL's frames through SQLite's commit hook, and
 * the relay checkpoints by that count. It matches the file, and starts over
 * once a RESTART checkpoint has let the writer wrap the WAL, which it does
 * in place (the file is not cut, so its pages stay cached). */
static void test_wal_used(void)
{
	const char *dir = new_dir("walhook");
	char path[512];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/%s-wal", dir, IL_STORE_FILE);
	struct il_store *st = open_ok(dir);
	CHECK_EQ(store_set_deferred_sync(st), 0);
	CHECK_EQ(store_wal_commits(st), 0);
	CHECK_EQ(store_wal_used(st), 0);
	for (uint32_t n = 0; n < 50; n++)
		CHECK_EQ(put1(st, n, "list-w", NULL, one_peer, 1, 1, NULL, NULL), 0);
	CHECK_EQ(store_wal_commits(st), 50);
	int64_t used = store_wal_used(st);
	CHECK_EQ(stat(path, &sb), 0);
	CHECK(used > 0);
	CHECK_EQ(used + 32, (int64_t)sb.st_size);       /* the header, then the frames */

	struct store_ckpt *c = NULL;
	int complete = 0;
	CHECK_EQ(store_ckpt_open(st, &c), 0);
	CHECK_EQ(store_ckpt_run(c, 1, &complete), 0);
	CHECK_EQ(complete, 1);
	/* The writer wraps at its next commit; until then the count stands. */
	CHECK_EQ(store_wal_used(st), used);
	CHECK_EQ(put1(st, 50, "list-w", NULL, one_peer, 1, 1, NULL, NULL), 0);
	CHECK_EQ(store_wal_commits(st), 51);
	CHECK(store_wal_used(st) > 0);
	CHECK(store_wal_used(st) < used);
	CHECK_EQ(stat(path, &sb), 0);
	CHECK_EQ(used + 32, (int64_t)sb.st_size);
	CHECK(has(st, 0) == 1 && has(st, 50) == 1);
	store_ckpt_close(c);
	store_close(st);
}

/* When the relay checkpoints, decided from the WAL's bytes and commits. */
static void test_ckpt_plan(void)
{
	const int64_t MiB = 1 << 20;
	const enum store_ckpt_kind N = STORE_CKPT_NONE, P = STORE_CKPT_PASSIVE, R = STORE_CKPT_RESTART;
	struct store_ckpt_plan p;
	store_ckpt_plan_init(&p, 1000);
	/* A WAL left by the last run is copied on a tick after 2 s. */
	CHECK_EQ(store_ckpt_plan_next(&p, 0, 0, 1500, 1), N);
	CHECK_EQ(store_ckpt_plan_next(&p, 0, 0, 3000, 1), P);
	store_ckpt_plan_done(&p, P, 1, 0, 0, 3010);
	CHECK_EQ(store_ckpt_plan_next(&p, 0, 0, 9000, 1), N);  /* idle: nothing new */
	/* Growth: a PASSIVE for every 2 MiB, looked at after commits. */
	CHECK_EQ(store_ckpt_plan_next(&p, 1 * MiB, 10, 9010, 0), N);
	CHECK_EQ(store_ckpt_plan_next(&p, 2 * MiB, 20, 9020, 0), P);
	store_ckpt_plan_done(&p, P, 1, 2 * MiB, 22, 9025);
	CHECK_EQ(store_ckpt_plan_next(&p, 3 * MiB, 30, 9030, 0), N);
	CHECK_EQ(store_ckpt_plan_next(&p, 6 * MiB, 60, 9060, 0), P);
	store_ckpt_plan_done(&p, P, 1, 6 * MiB, 61, 9065);
	/* 8 MiB: a RESTART. Commits made while it ran do not make a second
	 * one: the count stands until the writer's next commit wraps. */
	CHECK_EQ(store_ckpt_plan_next(&p, 8 * MiB, 80, 9080, 0), R);
	store_ckpt_plan_done(&p, R, 1, 8 * MiB, 82, 9085);
	CHECK_EQ(store_ckpt_plan_next(&p, 8 * MiB, 82, 9086, 0), N);
	/* Wrapped: counted from the start again. */
	CHECK_EQ(store_ckpt_plan_next(&p, 1 * MiB, 83, 9090, 0), N);
	CHECK_EQ(store_ckpt_plan_next(&p, 2 * MiB, 90, 9100, 0), P);
	store_ckpt_plan_done(&p, P, 1, 2 * MiB, 90, 9105);
	CHECK_EQ(store_ckpt_plan_next(&p, 5 * MiB, 100, 9110, 0), P);
	store_ckpt_plan_done(&p, P, 1, 5 * MiB, 100, 9115);
	/* A reader refuses the RESTART. The PASSIVE steps go on, and the next
	 * RESTART comes 500 ms after the refused one, whether the PASSIVEs
	 * between copied everything or not. */
	CHECK_EQ(store_ckpt_plan_next(&p, 8 * MiB, 120, 9130, 0), R);
	store_ckpt_plan_done(&p, R, 0, 8 * MiB, 121, 9150);
	CHECK_EQ(store_ckpt_plan_next(&p, 9 * MiB, 130, 9160, 0), N);
	CHECK_EQ(store_ckpt_plan_next(&p, 10 * MiB, 140, 9200, 0), P);
	store_ckpt_plan_done(&p, P, 1, 10 * MiB, 141, 9210);
	CHECK_EQ(store_ckpt_plan_next(&p, 11 * MiB, 145, 9300, 0), N);
	CHECK_EQ(store_ckpt_plan_next(&p, 12 * MiB, 150, 9400, 0), P);
	store_ckpt_plan_done(&p, P, 0, 12 * MiB, 150, 9410);
	CHECK_EQ(store_ckpt_plan_next(&p, 12 * MiB, 160, 9649, 0), N);
	CHECK_EQ(store_ckpt_plan_next(&p, 12 * MiB, 160, 9650, 0), R);
	store_ckpt_plan_done(&p, R, 1, 12 * MiB, 161, 9660);
	/* Frames held back (a busy lock) are copied on an idle tick, with no
	 * commit since. */
	CHECK_EQ(store_ckpt_plan_next(&p, 2 * MiB, 170, 9700, 0), P);
	store_ckpt_plan_done(&p, P, 0, 2 * MiB, 170, 9710);
	CHECK_EQ(store_ckpt_plan_next(&p, 2 * MiB, 170, 11000, 1), N);
	CHECK_EQ(store_ckpt_plan_next(&p, 2 * MiB, 170, 11710, 1), P);
	store_ckpt_plan_done(&p, P, 1, 2 * MiB, 170, 11720);
	CHECK_EQ(store_ckpt_plan_next(&p, 2 * MiB, 170, 20000, 1), N);
	/* A commit between the end of a RESTART and its report wrapped the WAL
	 * (less in use than when it started) and was not copied: a tick copies
	 * it, with no commit since. */
	CHECK_EQ(store_ckpt_plan_next(&p, 8 * MiB, 180, 20010, 0), R);
	store_ckpt_plan_done(&p, R, 1, 64 * 1024, 181, 20020);
	CHECK_EQ(store_ckpt_plan_next(&p, 64 * 1024, 181, 20030, 0), N);
	CHECK_EQ(store_ckpt_plan_next(&p, 64 * 1024, 181, 22020, 1), P);
	store_ckpt_plan_done(&p, P, 1, 64 * 1024, 181, 22030);
	CHECK_EQ(store_ckpt_plan_next(&p, 64 * 1024, 181, 30000, 1), N);
}

/* Rates for the relay's hot paths; printed, never asserted (machines vary). */
static void bench(void)
{
	enum { BATCH = 256, BATCHES = 40, BLOB = 2560 };
	struct il_store *st = open_ok(new_dir("bench"));
	static uint8_t ids[BATCH * BATCHES][IL_SHA256_LEN];
	static char msgids[BATCH * BATCHES][40];
	static uint8_t blob[BLOB];
	util_random(blob, sizeof(blob));
	struct store_item it[BATCH];

	int64_t t0 = util_mono_ms();
	for (int b = 0; b < BATCHES; b++) {
		for (int i = 0; i < BATCH; i++) {
			int k = b * BATCH + i;
			util_random(ids[k], IL_SHA256_LEN);
			snprintf(msgids[k], sizeof(msgids[k]), "<%d.bench@example.org>", k);
			it[i] = (struct store_item){ .id = ids[k], .list = "bench", .message_id = msgids[k],
						     .origin = "o", .blob = blob, .blob_len = BLOB,
						     .peers = one_peer, .n_peers = 1, .deliver = 1 };
		}
		CHECK_EQ(store_put(st, it, BATCH), 0);
	}
	int64_t t1 = util_mono_ms();
	double put_rate = BATCH * BATCHES * 1000.0 / (double)(t1 - t0 ? t1 - t0 : 1);

	static struct store_entry e[BATCH];
	size_t n, total = 0;
	int64_t after = 0;
	for (;;) {
		CHECK_EQ(store_queue_fetch(st, "peer-a", after, BATCH, SIZE_MAX, e, &n), 0);
		if (n == 0)
			break;
		int64_t *ack = malloc(n * sizeof(*ack));
		for (size_t i = 0; i < n; i++)
			ack[i] = e[i].seq;
		after = e[n - 1].seq;
		store_entries_free(e, n);
		CHECK_EQ(store_queue_ack(st, "peer-a", ack, n), 0);
		free(ack);
		total += n;
	}
	int64_t t2 = util_mono_ms();
	CHECK_EQ(total, BATCH * BATCHES);
	double q_rate = (double)total * 1000.0 / (double)(t2 - t1 ? t2 - t1 : 1);

	total = 0;
	for (;;) {
		CHECK_EQ(store_deliver_fetch(st, "bench", util_now_ms(), INT64_MAX, BATCH, NULL, 0, e, &n), 0);
		if (n == 0)
			break;
		int64_t seqs[BATCH];
		for (size_t i = 0; i < n; i++)
			seqs[i] = e[i].seq;
		store_entries_free(e, n);
		CHECK_EQ(store_deliver_done(st, "bench", seqs, n), 0);
		total += n;
	}
	int64_t t3 = util_mono_ms();
	CHECK_EQ(total, BATCH * BATCHES);
	double d_rate = (double)total * 1000.0 / (double)(t3 - t2 ? t3 - t2 : 1);
	fprintf(stderr,
		"test_store: bench %d x %d items of %d B, synchronous=FULL: put %.0f items/s,"
		" queue fetch+ack %.0f items/s, deliver fetch+done %.0f items/s\n",
		BATCHES, BATCH, BLOB, put_rate, q_rate, d_rate);
	store_close(st);
}

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

/* Schema 1 as that release created it, for the migration tests. */
static const char schema_v1_sql[] =
	"CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" id BLOB NOT NULL UNIQUE CHECK (length(id) = 32), list TEXT NOT NULL,"
	" msgid TEXT, origin TEXT, origin_time INTEGER NOT NULL,"
	" received INTEGER NOT NULL, tlp INTEGER NOT NULL, local INTEGER NOT NULL,"
	" blob BLOB NOT NULL);"
	"CREATE UNIQUE INDEX messages_list_msgid ON messages (list, msgid)"
	" WHERE msgid IS NOT NULL;"
	"CREATE INDEX messages_received ON messages (received);"
	"CREATE TABLE peer_queue (peer TEXT NOT NULL, seq INTEGER NOT NULL,"
	" queued INTEGER NOT NULL, PRIMARY KEY (peer, seq)) WITHOUT ROWID;"
	"CREATE TABLE deliveries (list TEXT NOT NULL, seq INTEGER NOT NULL,"
	" state INTEGER NOT NULL, attempts INTEGER NOT NULL, next_try INTEGER NOT NULL,"
	" last_error TEXT, PRIMARY KEY (list, seq)) WITHOUT ROWID;"
	"CREATE INDEX deliveries_due ON deliveries (list, state, seq, next_try);";

/* A store written by schema 1 (a UNIQUE id column) opens as schema 2: the
 * messages and their queue rows are kept, the AUTOINCREMENT counter too
 * (here above the largest seq, as after a prune of the newest message), and
 * a new message gets a seq never used before. The schema 1 text below is
 * that release's, as a file from it holds. */
static void test_migrate_v1(void)
{
	const char *dir = new_dir("migrate");
	CHECK_EQ(util_mkdirs(dir, 0700), 0);
	char sql[4096], hex[2][2 * IL_SHA256_LEN + 1];
	for (uint32_t i = 0; i < 2; i++) {
		uint8_t id[IL_SHA256_LEN];
		make_id(id, i + 1);
		for (size_t k = 0; k < IL_SHA256_LEN; k++)
			snprintf(hex[i] + 2 * k, 3, "%02x", id[k]);
	}
	snprintf(sql, sizeof(sql),
		 "%s"
		 "INSERT INTO messages VALUES (1, x'%s', 'l', '<one@x>', 'o', 1700000000001,"
		 " 1, 2, 0, x'00');"
		 "INSERT INTO messages VALUES (2, x'%s', 'l', '<two@x>', 'o', 1700000000002,"
		 " 1, 2, 0, x'00');"
		 "INSERT INTO peer_queue VALUES ('peer-a', 1, 1), ('peer-a', 2, 1);"
		 "UPDATE sqlite_sequence SET seq = 7 WHERE name = 'messages';"
		 "PRAGMA user_version = 1;",
		 schema_v1_sql, hex[0], hex[1]);
	CHECK_EQ(side_sql(dir, sql), SQLITE_OK);
	CHECK_EQ(side_int(dir, "SELECT seq FROM sqlite_sequence WHERE name = 'messages'"), 7);
	struct il_store *st = open_ok(dir);
	CHECK_EQ(side_int(dir, "PRAGMA user_version"), IL_STORE_SCHEMA);
	/* No UNIQUE column constraint left, the new index there. */
	CHECK_EQ(side_int(dir, "SELECT count(*) FROM pragma_index_list('messages')"
			       " WHERE origin = 'u'"), 0);
	CHECK_EQ(side_int(dir, "SELECT count(*) FROM pragma_index_list('messages')"
			       " WHERE name = 'messages_time_id' AND \"unique\""), 1);
	CHECK_EQ(has(st, 1), 1);
	CHECK_EQ(has(st, 2), 1);
	uint64_t q = 0;
	CHECK_EQ(store_queue_stats(st, "peer-a", &q, NULL), 0);
	CHECK_EQ(q, 2);
	int result = 0;
	int64_t seq = 0;
	CHECK_EQ(put1(st, 1, "l", "<other@x>", one_peer, 1, 1, &result, NULL), 0);
	CHECK_EQ(result, IL_EDUP);      /* the same id, though another Message-ID */
	CHECK_EQ(put1(st, 3, "l", "<three@x>", one_peer, 1, 1, &result, &seq), 0);
	CHECK_EQ(result, 0);
	CHECK(seq > 7);         /* never one of the pruned seqs */
	store_close(st);
}

/* The AUTOINCREMENT counter through the migration, in every state schema 1
 * can leave it: the next seq is above both the counter and every seq. */
static void test_migrate_counter(void)
{
	static const struct {
		int rows, counter;      /* counter -1: no sqlite_sequence row */
		int64_t next;
	} cases[] = { { 2, 7, 8 }, { 0, 7, 8 }, { 2, -1, 3 }, { 2, 1, 3 }, { 0, -1, 1 } };
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char name[32], sql[4096];
		snprintf(name, sizeof(name), "migrate-counter-%zu", c);
		const char *dir = new_dir(name);
		CHECK_EQ(util_mkdirs(dir, 0700), 0);
		int n = snprintf(sql, sizeof(sql), "%s", schema_v1_sql);
		for (int i = 1; i <= cases[c].rows; i++)
			n += snprintf(sql + n, sizeof(sql) - (size_t)n,
				      "INSERT INTO messages VALUES (%d, randomblob(32), 'l', NULL, 'o',"
				      " %d, 1, 2, 0, x'00');", i, i);
		if (cases[c].counter >= 0)
			n += snprintf(sql + n, sizeof(sql) - (size_t)n,
				      "INSERT INTO messages VALUES (99, randomblob(32), 'l', NULL, 'o',"
				      " 99, 1, 2, 0, x'00'); DELETE FROM messages WHERE seq = 99;"
				      "UPDATE sqlite_sequence SET seq = %d WHERE name = 'messages';",
				      cases[c].counter);
		else
			n += snprintf(sql + n, sizeof(sql) - (size_t)n,
				      "DELETE FROM sqlite_sequence WHERE name = 'messages';");
		snprintf(sql + n, sizeof(sql) - (size_t)n, "PRAGMA user_version = 1;");
		CHECK_EQ(side_sql(dir, sql), SQLITE_OK);
		struct il_store *st = open_ok(dir);
		int64_t seq = 0;
		int result = -1;
		CHECK_EQ(put1(st, 500, "l", NULL, one_peer, 1, 1, &result, &seq), 0);
		CHECK_EQ(result, 0);
		if (seq != cases[c].next)
			fprintf(stderr, "case %zu: next seq %lld, want %lld\n", c, (long long)seq,
				(long long)cases[c].next);
		CHECK(seq == cases[c].next);
		store_close(st);
	}
}

int main(void)
{
	tmp_root = check_tmpdir();
	test_open();
	test_newer();
	test_put();
	test_put_rollback();
	test_batch_atomic();
	test_queue();
	test_deliver();
	test_prune();
	test_reopen_backup();
	test_migrate_v1();
	test_migrate_counter();
	test_durability();
	test_wal_used();
	test_ckpt_plan();
	bench();
	/* Keep the files of a failed run for a look with sqlite3. */
	if (check_failures == 0)
		nftw(tmp_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return check_done("test_store");
}
