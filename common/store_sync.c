/*
 * store_sync.c — deferred durability for a relay that groups commits.
 *
 * In deferred mode the store's connection commits without SQLite's fsync
 * (synchronous=OFF) and never checkpoints by itself; the relay makes the
 * WAL durable with store_sync_wal() on a worker thread before it
 * acknowledges anything those commits hold (one fdatasync for every commit
 * made meanwhile), and checkpoints through a second connection, on a worker
 * thread too, with synchronous=FULL.
 *
 * Why this is as durable as synchronous=FULL for everything acknowledged:
 * WAL frames are only ever appended, and fdatasync of the WAL file makes
 * every frame written before it durable. A checkpoint copies frames into
 * the database and fsyncs it (FULL) before it records them as backfilled;
 * the writer restarts the WAL from its start, overwriting old frames, only
 * once all of them are backfilled. So no acknowledged frame is overwritten
 * before its copy in the database is on disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "il/error.h"
#include "il/log.h"
#include "store_int.h"

struct store_ckpt {
	sqlite3 *db;
};

/* Called by SQLite after every commit on the writer's connection, with the
 * frames the WAL holds now: the relay checkpoints by this, right after the
 * commit that crossed a mark, not by the file's size on the next tick (the
 * file keeps its size after a wrap, and half a second of writes let the WAL
 * outgrow the size it is truncated back to, so it was cut and grown again
 * every cycle). */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	(void)db;
	(void)name;
	struct il_store *st = arg;
	st->wal_frames = frames;
	st->wal_commits++;
	return SQLITE_OK;
}

int store_set_deferred_sync(struct il_store *st)
{
	char ps[32];
	int rc = store_pragma_text(st->db, "PRAGMA page_size", ps, sizeof(ps));
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(st->db, "PRAGMA synchronous = OFF; PRAGMA wal_autocheckpoint = 0",
				  NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return store_err(st, rc, "deferred_sync");
	st->frame_bytes = strtoll(ps, NULL, 10) + 24;
	/* After the pragma: wal_autocheckpoint = 0 clears any hook. */
	sqlite3_wal_hook(st->db, wal_hook, st);
	return 0;
}

int64_t store_wal_used(const struct il_store *st)
{
	return st->wal_frames * st->frame_bytes;
}

int64_t store_wal_commits(const struct il_store *st)
{
	return st->wal_commits;
}

int store_wal_fd(struct il_store *st)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s-wal", st->path);
	/* fdatasync works on any descriptor of the file, read-only included. */
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		/* A database just switched to WAL (a restored backup is in
		 * rollback mode) has no WAL file until its first write. */
		sqlite3_exec(st->db, "BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS wal_probe(x);"
				     " DROP TABLE wal_probe; COMMIT", NULL, NULL, NULL);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	return fd < 0 ? -errno : fd;
}

int store_sync_wal(int fd)
{
	return fdatasync(fd) < 0 ? -errno : 0;
}

int store_ckpt_open(struct il_store *st, struct store_ckpt **out)
{
	struct store_ckpt *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	int rc = sqlite3_open_v2(st->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(c->db, "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0",
				  NULL, NULL, NULL);
	/* A RESTART holds the writer lock while it waits for readers: with a
	 * reader that stays (a backup's VACUUM INTO), every try would stall
	 * the loop's writes for the whole timeout. It waits 20 ms at most,
	 * and the plan tries again 500 ms later at the earliest. */
	if (rc == SQLITE_OK)
		sqlite3_busy_timeout(c->db, 20);
	if (rc != SQLITE_OK) {
		log_err("store", "checkpointer_failed", "err=%s",
			log_q(c->db ? sqlite3_errmsg(c->db) : "out of memory"));
		sqlite3_close(c->db);
		free(c);
		return IL_ESTORE;
	}
	*out = c;
	return 0;
}

int store_ckpt_run(struct store_ckpt *c, int restart, int *complete)
{
	/* PASSIVE never waits for (or blocks) the writer, but under steady
	 * writes the writer never finds the WAL fully copied and never wraps
	 * it, so the file grows; RESTART waits for a gap between the writer's
	 * transactions (a short stall of the loop) and lets it wrap. */
	int logf = -1, done = -1;
	int rc = sqlite3_wal_checkpoint_v2(c->db, NULL,
					   restart ? SQLITE_CHECKPOINT_RESTART : SQLITE_CHECKPOINT_PASSIVE,
					   &logf, &done);
	*complete = rc == SQLITE_OK && logf >= 0 && done == logf;
	return rc == SQLITE_OK || rc == SQLITE_BUSY ? 0 : IL_ESTORE;
}

void store_ckpt_close(struct store_ckpt *c)
{
	if (!c)
		return;
	sqlite3_close(c->db);
	free(c);
}

/* ---------- when to checkpoint ---------- */

#define CKPT_WAL_BYTES (8 << 20)        /* RESTART: let the writer wrap the WAL */
#define CKPT_STEP_BYTES (2 << 20)       /* PASSIVE for every this much growth */
#define CKPT_EVERY_MS 2000              /* an idle WAL's new commits, on a tick */
#define CKPT_RETRY_MS 500               /* after a RESTART that readers refused */

void store_ckpt_plan_init(struct store_ckpt_plan *p, int64_t now_ms)
{
	/* commits -1: a WAL left by the last run is copied out on a tick too. */
	*p = (struct store_ckpt_plan){ .commits = -1, .last_ms = now_ms, .restart_ms = now_ms };
}

enum store_ckpt_kind store_ckpt_plan_next(struct store_ckpt_plan *p, int64_t used, int64_t commits,
					  int64_t now_ms, int tick)
{
	/* Nothing committed since the last one, which copied everything: a
	 * wrap the writer has not made yet (it wraps at its next commit) or
	 * an idle WAL. */
	if (commits == p->commits)
		return STORE_CKPT_NONE;
	int restart = used >= CKPT_WAL_BYTES &&
		      (!p->restart_refused || now_ms - p->restart_ms >= CKPT_RETRY_MS);
	/* Below where the last one started: the writer has wrapped since. */
	int64_t from = used < p->from ? 0 : p->from;
	if (!restart && used - from < CKPT_STEP_BYTES &&
	    !(tick && now_ms - p->last_ms >= CKPT_EVERY_MS))
		return STORE_CKPT_NONE;
	p->from = used;
	p->commits = commits;
	return restart ? STORE_CKPT_RESTART : STORE_CKPT_PASSIVE;
}

void store_ckpt_plan_done(struct store_ckpt_plan *p, enum store_ckpt_kind kind, int complete,
			  int64_t used, int64_t commits, int64_t now_ms)
{
	p->last_ms = now_ms;
	if (kind == STORE_CKPT_RESTART) {
		p->restart_ms = now_ms;
		p->restart_refused = !complete;
		/* The count the hook gave stands until the writer's next commit
		 * wraps the WAL, and commits made before the RESTART took the
		 * writer's lock were copied too: nothing to do until the next
		 * commit. Unless one came after it, wrapped the WAL already and
		 * was not copied (used went down): then a tick copies it. */
		if (complete && used >= p->from)
			p->commits = commits;
	}
	/* Frames left behind (a reader, a busy lock): copy them later even
	 * if nothing is committed meanwhile. */
	if (!complete)
		p->commits = -1;
}
