/*
 * durable.c — acknowledgements wait for the disk, many at a time.
 *
 * The store commits without fsync (store_set_deferred_sync). Whoever is
 * about to acknowledge something it committed calls durable_after(); the
 * callback runs on the loop once an fdatasync of the WAL that started after
 * that commit has returned. One fdatasync runs at a time on the thread pool,
 * and covers every waiter registered before it started: group commit without
 * ever blocking the loop on the disk. Checkpoints run the same way, through
 * the store's second connection.
 *
 * The same syncs move the durable watermark: the highest message seq known
 * to be on disk. Local deliveries take nothing above it. A delivery made
 * from a commit that a power cut then takes back would be made again when
 * the sender, never acknowledged, sends the message again: exactly once
 * needs the message on disk before its first delivery, as before its ack.
 *
 * A failed fdatasync stops the relay (exit 74). The kernel may have dropped
 * the pages it could not write and marked them clean: a later sync would
 * succeed without them, acknowledging commits that follow a hole in the WAL
 * (SQLite's recovery stops at the hole), and a peer's resend of a message
 * in the hole would be acknowledged as a duplicate of what is not on disk.
 * So nothing is acknowledged after the first failure; the operator checks
 * the disk, and what was not acknowledged is sent again after the restart.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "il/error.h"
#include "il/log.h"
#include "il/util.h"
#include "relay.h"

struct waiter {
	struct waiter *next;
	durable_cb cb;
	void *arg;
};

struct durable {
	struct relay *r;
	int fd;
	struct waiter *pending, **pending_tail;
	struct waiter *inflight;
	int syncing;
	int failed;                     /* < 0: a sync failed; nothing is durable any more */
	uv_work_t sync_req;
	int sync_result;
	int64_t sync_seq;               /* store_last_seq() when the running sync started */
	int64_t durable_seq;            /* the watermark */
	struct store_ckpt *ckpt;
	int ckpt_running;
	enum store_ckpt_kind ckpt_kind; /* of the one running */
	int ckpt_complete;              /* it copied every frame */
	struct store_ckpt_plan plan;
	uv_work_t ckpt_req;
};

static void start_sync(struct durable *d);
static void ckpt_consider(struct durable *d, int tick);

static void sync_work(uv_work_t *req)
{
	struct durable *d = req->data;
	d->sync_result = store_sync_wal(d->fd);
}

/* After a failed sync: every waiter hears it, none waits for a disk that
 * can no longer be trusted. */
static void fail_pending(struct durable *d)
{
	while (d->pending) {
		struct waiter *w = d->pending;
		d->pending = w->next;
		w->cb(w->arg, d->failed);
		free(w);
	}
	d->pending_tail = &d->pending;
}

static void sync_after(uv_work_t *req, int status)
{
	(void)status;
	struct durable *d = req->data;
	struct waiter *w = d->inflight;
	int e = d->sync_result;
	int advanced = 0;
	d->inflight = NULL;
	d->syncing = 0;
	if (e < 0 && !d->failed) {
		log_err("store", "sync_failed", "err=%s action=stop exit=%d", log_q(il_strerror(e)),
			IL_EX_IOERR);
		d->failed = e;
	} else if (e == 0 && !d->failed && d->sync_seq > d->durable_seq) {
		d->durable_seq = d->sync_seq;
		advanced = 1;
	}
	while (w) {
		struct waiter *next = w->next;
		w->cb(w->arg, e);
		free(w);
		w = next;
	}
	/* Local posts held while this sync ran ride the next one: store them
	 * now, before it starts (their durable_after may start it itself). */
	relay_submit_flush(d->r);
	if (d->failed) {
		fail_pending(d);
		relay_fatal(d->r, IL_EX_IOERR);
		return;
	}
	if (d->pending)
		start_sync(d);
	if (advanced)
		relay_kick_deliveries(d->r);
}

static void start_sync(struct durable *d)
{
	if (d->syncing || !d->pending)
		return;
	d->inflight = d->pending;
	d->pending = NULL;
	d->pending_tail = &d->pending;
	d->syncing = 1;
	d->sync_seq = store_last_seq(d->r->store);
	d->sync_req.data = d;
	IL_ASSERT(uv_queue_work(d->r->loop, &d->sync_req, sync_work, sync_after) == 0);
	ckpt_consider(d, 0);
}

void durable_after(struct relay *r, durable_cb cb, void *arg)
{
	struct durable *d = r->durable;
	if (d && d->failed) {
		cb(arg, d->failed);
		return;
	}
	struct waiter *w = calloc(1, sizeof(*w));
	if (!d || !w) {
		/* No deferred mode (or no memory): commits were synchronous. */
		free(w);
		cb(arg, d ? -ENOMEM : 0);
		return;
	}
	w->cb = cb;
	w->arg = arg;
	*d->pending_tail = w;
	d->pending_tail = &w->next;
	start_sync(d);
}

static void ckpt_work(uv_work_t *req)
{
	struct durable *d = req->data;
	if (store_ckpt_run(d->ckpt, d->ckpt_kind == STORE_CKPT_RESTART, &d->ckpt_complete) < 0)
		log_warn("store", "checkpoint_failed", "wal_bytes=%lld", (long long)d->plan.from);
}

static void ckpt_after(uv_work_t *req, int status)
{
	(void)status;
	struct durable *d = req->data;
	d->ckpt_running = 0;
	store_ckpt_plan_done(&d->plan, d->ckpt_kind, d->ckpt_complete, store_wal_used(d->r->store),
			     store_wal_commits(d->r->store), util_mono_ms());
}

/*
 * Looked at when a group's fdatasync starts (right after its commits) and
 * on every tick; store_ckpt_plan_next() decides (docs/store.md). Deciding
 * by the frames SQLite's commit hook counts, right after the commit that
 * crossed a mark, keeps the WAL near 8 MiB, below the size it is cut back
 * to after a wrap (journal_size_limit), so its pages stay in the page cache
 * instead of being freed and taken afresh every cycle.
 */
static void ckpt_consider(struct durable *d, int tick)
{
	if (!d || d->ckpt_running || d->r->stopping)
		return;
	struct il_store *st = d->r->store;
	d->ckpt_kind = store_ckpt_plan_next(&d->plan, store_wal_used(st), store_wal_commits(st),
					    util_mono_ms(), tick);
	if (d->ckpt_kind == STORE_CKPT_NONE)
		return;
	d->ckpt_running = 1;
	d->ckpt_req.data = d;
	IL_ASSERT(uv_queue_work(d->r->loop, &d->ckpt_req, ckpt_work, ckpt_after) == 0);
}

void durable_tick(struct relay *r)
{
	ckpt_consider(r->durable, 1);
}

int durable_start(struct relay *r)
{
	struct durable *d = calloc(1, sizeof(*d));
	int e;
	if (!d)
		return -ENOMEM;
	d->r = r;
	d->pending_tail = &d->pending;
	d->fd = -1;
	/* Everything that can fail comes before the switch to deferred sync. */
	if ((e = store_wal_fd(r->store)) < 0)
		goto fail;
	d->fd = e;
	if ((e = store_ckpt_open(r->store, &d->ckpt)) < 0)
		goto fail;
	/* A WAL left by a killed run may be in the page cache only: sync it
	 * once, then everything stored so far is below the watermark. */
	if ((e = store_sync_wal(d->fd)) < 0) {
		store_ckpt_close(d->ckpt);
		goto fail;
	}
	d->durable_seq = store_last_seq(r->store);
	if ((e = store_set_deferred_sync(r->store)) < 0) {
		store_ckpt_close(d->ckpt);
		goto fail;
	}
	store_ckpt_plan_init(&d->plan, util_mono_ms());
	r->durable = d;
	return 0;
fail:
	if (d->fd >= 0)
		close(d->fd);
	free(d);
	log_err("store", "deferred_sync_unavailable", "err=%s", log_q(il_strerror(e)));
	return e;
}

int64_t durable_seq(struct relay *r)
{
	/* Without deferred sync every commit was synced before it returned. */
	return r->durable ? r->durable->durable_seq : INT64_MAX;
}

int durable_busy(struct relay *r)
{
	struct durable *d = r->durable;
	return d && (d->syncing || d->ckpt_running || d->pending);
}

int durable_syncing(struct relay *r)
{
	return r->durable && r->durable->syncing;
}

void durable_stop(struct relay *r)
{
	struct durable *d = r->durable;
	if (!d)
		return;
	IL_ASSERT(!d->syncing && !d->ckpt_running && !d->pending);
	store_ckpt_close(d->ckpt);
	close(d->fd);
	free(d);
	r->durable = NULL;
}
