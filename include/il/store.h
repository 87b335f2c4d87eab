/*
 * store.h — the relay's durable state: one SQLite database (WAL,
 * synchronous=FULL) in data_dir.
 *
 * It holds every accepted message (by envelope id, with a unique list +
 * Message-ID index so a cross-post is one message), per-peer outbound queues,
 * per-list delivery state, and prunes after the retention period.
 *
 * Threading: a store handle is used by one thread only (the relay's loop
 * thread); see docs/architecture.md. Every write function is one transaction:
 * when it returns 0 the write is on disk (fsynced), so the caller may
 * acknowledge. Batch functions take arrays so one fsync covers many messages.
 * Full disk: IL_EFULL, nothing half-written, the relay tells senders to retry.
 */
#ifndef IL_STORE_H
#define IL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "il/crypto.h"

#define IL_STORE_SCHEMA 2
#define IL_STORE_FILE "interlist.db"

struct il_store;

/* Open (creating data_dir 0700 and the database when missing) and migrate.
 * IL_ENEWER for a database from a newer schema, with a clear message in err. */
int store_open(const char *data_dir, struct il_store **out, char *err, size_t errlen);
void store_close(struct il_store *st);

/* One message to store. Inputs are borrowed for the call. */
struct store_item {
	const uint8_t *id;              /* 32 bytes */
	const char *list;
	const char *message_id;         /* RFC 5322 Message-ID, NULL if unknown */
	const char *origin;
	int64_t origin_time_ms;
	int tlp;
	const uint8_t *blob;            /* the encoded envelope as accepted here */
	size_t blob_len;
	const char *const *peers;       /* queue it for these peers */
	size_t n_peers;
	int deliver;                    /* 1: add a pending delivery to `list` */
	int local;                      /* 1: ingested here, we are its origin */
	/* out */
	int result;                     /* 0 stored, IL_EDUP already there */
	uint8_t dup_of[IL_SHA256_LEN];  /* IL_EDUP: id of the stored message */
	int64_t seq;                    /* local sequence number when stored */
};

/* Store a batch in one transaction. Per-item result in items[i].result;
 * duplicates (same id, or same list + Message-ID) are not stored again and
 * queue nothing. Returns 0, or a negative code if the transaction failed
 * (then nothing of the batch is stored). */
int store_put(struct il_store *st, struct store_item *items, size_t n);

/* Group many lookups (store_has_id, ...) under one read transaction: in WAL
 * mode each lookup outside one takes and drops a read lock (three fcntl
 * calls on the shm file). Returns 1 when it began one, 0 when it did not
 * (one is open already, or the begin failed: the lookups work without);
 * pass that to store_read_end, which ends only a transaction begun here. */
int store_read_begin(struct il_store *st);
void store_read_end(struct il_store *st, int begun);

/* The highest message seq committed through st (or found at open): what a
 * sync of the WAL started now makes durable. */
int64_t store_last_seq(const struct il_store *st);

/* 1 if a message with this envelope id (signed at origin_time_ms, as the
 * envelope says) is stored, 0 if not, < 0 on error. One index lookup. */
int store_has_id(struct il_store *st, const uint8_t id[IL_SHA256_LEN], int64_t origin_time_ms);


/* Id of the message stored for list + Message-ID: 1 found, 0 not, < 0 error. */
int store_find_msgid(struct il_store *st, const char *list, const char *message_id,
		     uint8_t id_out[IL_SHA256_LEN]);

/* A queued message or pending delivery handed out by the fetch functions.
 * blob is malloc'd; store_entries_free() frees the blobs of an array. */
struct store_entry {
	int64_t seq;
	uint8_t id[IL_SHA256_LEN];
	uint8_t *blob;
	size_t blob_len;
	int64_t queued_ms;              /* when it entered the queue */
	int attempts;                   /* deliveries: tries so far */
	char *last_error;               /* deliveries: malloc'd or NULL */
};
void store_entries_free(struct store_entry *e, size_t n);

/* --- per-peer outbound queues --- */

/* Up to max_n entries (and about max_bytes) queued for peer with
 * seq > after_seq, oldest first. */
int store_queue_fetch(struct il_store *st, const char *peer, int64_t after_seq,
		      size_t max_n, size_t max_bytes, struct store_entry *out, size_t *n_out);

/* Remove acknowledged messages (by the seqs store_queue_fetch gave) from
 * peer's queue, one transaction. Seqs not queued for peer are ignored (acks
 * are idempotent). */
int store_queue_ack(struct il_store *st, const char *peer, const int64_t *seqs, size_t n);

/* Count and oldest queued_ms (0 when empty) of peer's queue. */
int store_queue_stats(struct il_store *st, const char *peer, uint64_t *count, int64_t *oldest_ms);

/* Drop one message (id) or all (id NULL) from peer's queue; *removed gets the count. */
int store_queue_purge(struct il_store *st, const char *peer, const uint8_t *id, uint64_t *removed);

/* Drop queue entries queued before cutoff_ms; cb is called per peer with the
 * number dropped (for the `expired` counter and a log line). */
int store_queue_expire(struct il_store *st, int64_t cutoff_ms,
		       void (*cb)(void *arg, const char *peer, uint64_t n), void *arg);

/* --- per-list deliveries --- */

/* Up to max_n pending deliveries for list with next try <= now_ms and seq <=
 * max_seq, oldest first, excluding seq values in the caller's in-flight set
 * (skip_seqs). max_seq keeps back messages committed but not yet on disk. */
int store_deliver_fetch(struct il_store *st, const char *list, int64_t now_ms, int64_t max_seq,
			size_t max_n, const int64_t *skip_seqs, size_t n_skip,
			struct store_entry *out, size_t *n_out);

/* Record deliveries as done (never repeated), one transaction. */
int store_deliver_done(struct il_store *st, const char *list, const int64_t *seqs, size_t n);

/* Temporary failure: try again at next_try_ms. */
int store_deliver_defer(struct il_store *st, const char *list, int64_t seq, int64_t next_try_ms,
			const char *error);

/* Permanent failure: park it (kept, listed by store_deliver_failed). */
int store_deliver_park(struct il_store *st, const char *list, int64_t seq, const char *error);

/* Parked deliveries of list, oldest first (for `interlistctl failed LIST`). */
int store_deliver_failed(struct il_store *st, const char *list, size_t max_n,
			 struct store_entry *out, size_t *n_out);

/* Make parked deliveries pending again: one (id) or all (id NULL). */
int store_deliver_retry(struct il_store *st, const char *list, const uint8_t *id, uint64_t *count);

/* The earliest next try after now_ms among list's pending deliveries, in
 * *next_ms; 0 when none is deferred past now_ms. */
int store_deliver_next_try(struct il_store *st, const char *list, int64_t now_ms, int64_t *next_ms);

int store_deliver_stats(struct il_store *st, const char *list, uint64_t *pending, uint64_t *failed);

/* --- deferred durability (store_sync.c) --- */

/*
 * Commit without SQLite's fsync and without automatic checkpoints. The
 * caller then owes, before acknowledging anything it committed: an
 * fdatasync of the WAL (store_sync_wal on the descriptor from store_wal_fd,
 * safe on any thread), and regular checkpoints through a store_ckpt (a
 * second connection, to run on a worker thread, one at a time).
 */
int store_set_deferred_sync(struct il_store *st);
int store_wal_fd(struct il_store *st);          /* a new descriptor; caller closes it */
int store_sync_wal(int fd);
/* Deferred mode, from SQLite's commit hook: the bytes of the frames the WAL
 * held after the last commit (counted from the writer's last wrap), and the
 * commits since deferred mode began. */
int64_t store_wal_used(const struct il_store *st);
int64_t store_wal_commits(const struct il_store *st);
struct store_ckpt;
int store_ckpt_open(struct il_store *st, struct store_ckpt **out);
/* One checkpoint (RESTART when restart, else PASSIVE). *complete is set to 1
 * when it copied every frame the WAL held and, for a RESTART, the writer may
 * wrap the WAL at its next commit; 0 when not every frame was copied (a
 * reader, a busy lock) or a RESTART could not wait out the readers. */
int store_ckpt_run(struct store_ckpt *c, int restart, int *complete);
void store_ckpt_close(struct store_ckpt *c);

/*
 * When to checkpoint (docs/store.md): a PASSIVE one for every 2 MiB the WAL
 * grows, a RESTART once it holds 8 MiB (after one that readers refused, not
 * again within 500 ms), and an idle WAL's new commits every 2 s on a tick.
 * The caller keeps one plan, asks store_ckpt_plan_next() after commits and
 * on ticks with store_wal_used() and store_wal_commits(), runs what it
 * answers, and reports the end with store_ckpt_plan_done(). Times are
 * monotonic milliseconds.
 */
enum store_ckpt_kind { STORE_CKPT_NONE, STORE_CKPT_PASSIVE, STORE_CKPT_RESTART };
struct store_ckpt_plan {
	int64_t from;           /* store_wal_used() when the last one started */
	int64_t commits;        /* store_wal_commits() then; -1: look again */
	int64_t last_ms;        /* when the last one ended */
	int64_t restart_ms;     /* when the last RESTART ended */
	int restart_refused;    /* it could not let the writer wrap */
};
void store_ckpt_plan_init(struct store_ckpt_plan *p, int64_t now_ms);
enum store_ckpt_kind store_ckpt_plan_next(struct store_ckpt_plan *p, int64_t used, int64_t commits,
					  int64_t now_ms, int tick);
void store_ckpt_plan_done(struct store_ckpt_plan *p, enum store_ckpt_kind kind, int complete,
			  int64_t used, int64_t commits, int64_t now_ms);

/* --- upkeep --- */

/* Delete messages received before cutoff_ms that no queue or delivery still
 * needs. *removed gets the count. */
int store_prune(struct il_store *st, int64_t cutoff_ms, uint64_t *removed);

/* Online consistent copy to path (VACUUM INTO); path must not exist. */
int store_backup(struct il_store *st, const char *path, char *err, size_t errlen);

/* Number of stored messages and database size in bytes (bench, status). */
int store_size(struct il_store *st, uint64_t *messages, uint64_t *bytes);
/* The highest message seq ever stored (0 for none); seqs never repeat. */
int store_max_seq(struct il_store *st, int64_t *seq);

#endif
