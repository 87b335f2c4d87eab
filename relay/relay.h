/*
 * relay.h — the daemon's state, owned by the loop thread.
 *
 * Threading rule (docs/architecture.md): everything in struct relay is read
 * and written on the libuv loop thread only. nng completion callbacks run on
 * nng's threads and only push an event onto net's locked queue and wake the
 * loop with uv_async_send. Signature checks run on libuv's thread pool
 * (uv_queue_work) over data the loop handed them and a held `trust`
 * snapshot; their results come back in the after-work callback, on the loop.
 * SQLite is touched only by the loop thread, through the store module.
 */
#ifndef IL_RELAY_H
#define IL_RELAY_H

#include <stdint.h>
#include <uv.h>

#include "il/config.h"
#include "il/envelope.h"
#include "il/store.h"
#include "nonce.h"
#include "wire.h"

#define RELAY_STALE_FUTURE_MS (10 * 60 * 1000)
#define RELAY_AUTH_WINDOW_MS (5 * 60 * 1000)

/* Global counters, since start (names are the status JSON keys). */
struct counters {
	uint64_t accepted, duplicates, bad_signature, unknown_origin, auth_failed, loops,
		too_large, stale, held_tlp, malformed, unknown_list, hop_limit, expired,
		not_accepted, replays,
		purged;                 /* dropped from peer queues by an operator */
};

/* Delivery latency (accepted here -> delivery recorded done), per list.
 * Per-bucket counts, not cumulative; metrics.c holds the bucket bounds and
 * renders them as a Prometheus histogram. */
#define RELAY_LATENCY_BUCKETS 14
struct latency_hist {
	uint64_t n[RELAY_LATENCY_BUCKETS + 1];  /* the last one: above every bound */
	uint64_t count;
	int64_t sum_ms;
};

/* Keys and config shared with worker threads; freed when the last holder
 * releases it (a reload may replace it while a verification runs). */
struct trust {
	int refs;                       /* loop thread only */
	struct il_config *cfg;
	size_t n;
	struct trust_entry {
		char id[IL_ID_MAX + 1];
		EVP_PKEY **keys;
		size_t n_keys;
	} *entries;
};
struct trust *trust_new(struct il_config *cfg, char *err, size_t errlen);
struct trust *trust_hold(struct trust *t);
void trust_release(struct trust *t);
const struct trust_entry *trust_find(const struct trust *t, const char *id);

struct net;
struct peer;
struct status_srv;
struct metrics;
struct deliverer;

/* Per-list runtime. */
struct list_rt {
	const struct il_list_conf *conf;
	uint64_t ingested, delivered;
	struct deliverer *dl;
	/* A reload that changed the delivery: the old deliverer finishes what
	 * it has under way before the new one starts, so nothing goes twice. */
	struct deliverer *draining;
	int restart_pending;
	struct ingest *in;              /* LMTP listener, if `ingest =` */
	struct latency_hist latency;
	/* A delivery failed, or its done was not recorded, in this run: from
	 * then on any item may already be there (a rename that landed before a
	 * later step failed; a retry resets attempts). Kept here, not in the
	 * deliverer, so that a reload's new deliverer knows it too. */
	int deliver_unsure;
};

struct sess;

struct relay {
	uv_loop_t *loop;
	struct il_config *cfg;          /* == trust->cfg */
	struct trust *trust;
	struct il_store *store;
	EVP_PKEY *sign_key;
	uint8_t boot[WIRE_BOOT_LEN];    /* random per start: requests name it */
	int64_t boot_seq;               /* highest message seq stored before this start */
	int64_t started_ms;
	struct counters c;
	struct peer **peers;
	size_t n_peers;
	struct list_rt **lists;         /* stable pointers: a reload adds and removes */
	size_t n_lists;
	struct list_rt **retired_lists; /* removed by a reload; freed at exit */
	size_t n_retired_lists;
	const char *config_path;        /* as given with -c, for reload */
	struct net *net;
	struct status_srv *status;
	struct metrics *metrics;        /* cert expiry dates, optional HTTP endpoint */
	struct nonce_cache *nonces;
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t tick;
	int stopping;
	int exit_code;                  /* non-zero: the daemon's exit status (relay_fatal) */
	int verify_jobs;                /* in flight on the thread pool */
	struct durable *durable;        /* deferred fsync; NULL: commits sync themselves */
	struct submit *submits;         /* signed local posts waiting for the group commit */
	struct submit **submits_tail;
	size_t submits_n;
	uv_check_t submit_check;
	uv_idle_t submit_kick;          /* one more loop turn, not a block in poll */
	int submits_closed;
	/* LMTP sessions answered in the group being answered: they write
	 * once every post of it is (ingest_answers_flush, at the end of the
	 * same callback). Empty whenever the loop turns: a session left here
	 * could be closed and freed while linked (checked each iteration). */
	struct sess *ingest_ready;
};

struct peer *relay_peer(struct relay *r, const char *id);
/* Make r->lists match cfg's [list] sections: keep (repointing conf) the lists
 * still there, add new ones, retire the removed ones (the caller has stopped
 * their delivery and ingest). Used at start and on reload. */
int relay_lists_sync(struct relay *r, const struct il_config *cfg);
void relay_lists_free(struct relay *r);
struct list_rt *relay_list(struct relay *r, const char *name);
void relay_stop(struct relay *r);
/* Stop, and exit with code (the first one given wins). */
void relay_fatal(struct relay *r, int code);
/* Re-read the config file and apply it (reload.c). On error the old config
 * stays in force and err holds "FILE:LINE: message"; returns IL_ECONFIG. */
int relay_reload(struct relay *r, char *err, size_t errlen);

/* --- accept.c: the intake of messages, local and from peers --- */

/* Store accepted envelopes (their path does not yet hold our id), one
 * transaction. Sets res[i] to RES_ACCEPTED, RES_DUPLICATE or RES_TEMPFAIL
 * (store full) and fills dup ids. local: the envelopes were posted here. */
int accept_store(struct relay *r, struct il_envelope **envs, char **msgids, size_t n,
		 int local, int *res, uint8_t (*ids)[IL_SHA256_LEN]);

/* One envelope under way from a peer. */
struct rx_item {
	const uint8_t *raw;             /* slice of the frame */
	size_t raw_len;
	struct il_envelope env;
	char *message_id;
	int result;                     /* enum wire_result; -1 while undecided */
};

struct rx_batch;
typedef void (*rx_done_fn)(struct rx_batch *b, void *arg);

struct rx_batch {
	struct relay *r;
	char peer[IL_ID_MAX + 1];
	struct rx_item *items;
	size_t n;
	struct trust *trust;            /* held while workers verify */
	int pending_work;
	rx_done_fn done;
	void *arg;
	void *frame;                    /* the nng message the slices point into */
};

/* Take a batch of raw envelopes from peer; results land in items[i].result
 * and done(b, arg) runs on the loop once every one is decided and durable.
 * done must call rx_batch_free(). */
struct rx_batch *rx_batch_new(struct relay *r, const char *peer, size_t n);
void rx_batch_start(struct rx_batch *b, rx_done_fn done, void *arg);
void rx_batch_free(struct rx_batch *b);

/*
 * A local post (submit / LMTP, submit.c). Checks and prepares it at once; a bad
 * post returns a negative code right away (IL_ENOTMAIL, IL_ENOMSGID,
 * IL_ETOOLARGE, IL_EFIELD for an unknown list) and cb is not called. A good
 * one returns 0 and cb(arg, 0, id, kind) runs once it is signed, stored and
 * durable (by group commit; at once for a repeat or a loop), or cb(arg,
 * IL_EFULL or another code, NULL, ...) if it could not be stored.
 * The message bytes are copied; the caller may free them on return.
 */
enum local_kind { LOCAL_NEW = 0, LOCAL_REPEAT, LOCAL_LOOP };
/* message_id: the post's Message-ID (for the caller's log line), or NULL. */
typedef void (*submit_cb)(void *arg, int err, const uint8_t *id, enum local_kind kind,
			  const char *message_id);
int relay_submit_async(struct relay *r, const char *list, const uint8_t *msg, size_t len,
		       submit_cb cb, void *arg);
/* Store the posts waiting for the group commit now (durable.c calls it as a
 * sync ends, so that they ride the next one whatever else keeps it busy). */
void relay_submit_flush(struct relay *r);
void relay_submit_init(struct relay *r);
void relay_submit_close(struct relay *r);

/* --- session.c / net.c --- */
int net_start(struct relay *r, char *err, size_t errlen);
/* Apply a reloaded config's peers: removed peers are closed and their
 * queues dropped, changed ones redialled, others untouched. */
int net_reload(struct relay *r, const struct il_config *cfg, char *err, size_t errlen);
void net_stop(struct relay *r);
void peer_kick(struct peer *p);          /* new messages queued for p */

struct peer_stats {
	int connected;
	uint64_t connects, sent, received, rejected;
	int64_t last_seen_ms;           /* 0: never */
	char last_error[128];
	int64_t connected_since_ms;
};
void peer_get_stats(const struct peer *p, struct peer_stats *s);
const char *peer_id(const struct peer *p);
void peer_count_rejected(struct peer *p, uint64_t n);
void peer_count_received(struct peer *p, uint64_t n);

/* --- durable.c: acknowledgements wait for one shared fdatasync --- */
typedef void (*durable_cb)(void *arg, int err);
int durable_start(struct relay *r);
/* cb(arg, 0) once everything committed so far is on disk (err < 0: the
 * sync failed, nothing may be acknowledged as durable). */
void durable_after(struct relay *r, durable_cb cb, void *arg);
void durable_tick(struct relay *r);
/* The durable watermark: every message with seq <= it is on disk. */
int64_t durable_seq(struct relay *r);
int durable_busy(struct relay *r);
/* An fdatasync is running: a commit now would wait for the next one anyway. */
int durable_syncing(struct relay *r);
void durable_stop(struct relay *r);


/* --- status.c --- */
int status_start(struct relay *r, char *err, size_t errlen);
void status_stop(struct relay *r);
/* Take a connection that waited for memory (from the tick). */
void status_accept_retry(struct relay *r);
/* The `status` JSON into a malloc'd string. */
char *status_json(struct relay *r);

/* --- ingest_lmtp.c: `ingest = lmtp://HOST:PORT | lmtp:unix:PATH` --- */
int ingest_start(struct relay *r, struct list_rt *l, char *err, size_t errlen);
/* A reload opens a new listener before it changes anything, so that an
 * address it cannot have refuses the reload. The listener serves its list
 * once attached (in the same loop callback), or goes with a refused reload
 * (discard). */
struct ingest *ingest_open(struct relay *r, const struct il_list_conf *lc, char *err,
			   size_t errlen);
void ingest_attach(struct ingest *in, struct list_rt *l);
void ingest_discard(struct ingest *in);
/* After a group's posters are answered: their log lines go out in one
 * write, then each session's replies, and each goes on with its input. */
void ingest_answers_flush(struct relay *r);
/* Take the connections a listener left waiting for memory (from the tick:
 * libuv accepts nothing more on a listener until its waiting one is taken). */
void ingest_accept_retry(struct relay *r);
void ingest_stop(struct list_rt *l);

/* --- deliver.c --- */
int deliver_start(struct relay *r, struct list_rt *l);
void deliver_kick(struct list_rt *l);
/* Every list's deliverer: the durable watermark moved (durable.c). */
void relay_kick_deliveries(struct relay *r);
void deliver_stop(struct list_rt *l);

#endif
