/*
 * deliver.c — per-list delivery scheduling (see deliver.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "il/error.h"
#include "il/log.h"
#include "il/util.h"
#include "deliver.h"
#include "metrics.h"

#define DL_BATCH 128
#define DL_BACKOFF_MAX_S 3600
#define DL_RECORD_RETRY_MS 1000      /* after the store failed to record or fetch */

/* An outcome the store could not record (disk full, its write lock held):
 * kept here and recorded again from the timer. While any is held the
 * deliverer takes no new work: the row would still look due, and a
 * delivery made would be made again (by SMTP or a program: a duplicate;
 * a failure: tried again at once, over and over). */
struct held {
	int64_t seq;
	uint8_t id[IL_SHA256_LEN];
	int64_t accepted_ms;
	int result;                     /* DL_DONE; DL_TEMPFAIL: defer; DL_PERMFAIL: park */
	int64_t next_try;               /* DL_TEMPFAIL */
	char error[200];
};

struct deliverer {
	struct relay *r;
	struct list_rt *l;
	/* The list's config as it was when this deliverer started: a reload
	 * that changes the list stops this one and starts another, and the
	 * trust reference keeps this config alive until the last item is done. */
	const struct il_list_conf *conf;
	struct trust *trust;
	int running;                    /* batch job, or number of async items in flight */
	int again;                      /* kicked while busy */
	int stopped;                    /* deliver_stop() came while work ran */
	uv_timer_t timer;               /* next deferred retry */
	struct dl_item *inflight;       /* async backends */
	void *backend_state;
	struct held *held;              /* outcomes waiting for the store */
	size_t n_held, cap_held;
};

struct dl_job {
	uv_work_t req;
	struct deliverer *d;
	struct dl_item *items;
	size_t n;
};

uv_loop_t *dl_loop(const struct dl_item *it) { return it->d->r->loop; }
const struct il_list_conf *dl_list(const struct dl_item *it) { return it->d->conf; }

char *deliver_relay_headers(const struct il_envelope *env)
{
	char hex[IL_ID_HEX_LEN + 1], path[IL_PATH_MAX * (IL_ID_MAX + 1) + 1], when[32];
	char *out = NULL;
	envelope_id_hex(env->id, hex);
	envelope_path_str(env, path, sizeof(path));
	/* The origin time with the id: the ingest's loop check finds the
	 * message by both in one index search (docs/store.md). */
	util_time_str((int64_t)env->origin_time_ms, when);
	if (asprintf(&out,
		     "X-Interlist-Id: %s\nX-Interlist-Time: %s\nX-Interlist-Origin: %s\n"
		     "X-Interlist-Path: %s\nX-Interlist-TLP: %s\nX-Interlist-List: %s\n",
		     hex, when, env->origin, path, tlp_name(env->tlp), env->list) < 0)
		return NULL;
	return out;
}

static void item_clear(struct dl_item *it)
{
	free(it->headers);
	free(it->msg);
	it->headers = NULL;
	it->msg = NULL;
}

static void schedule(struct deliverer *d);

static void on_timer(uv_timer_t *t)
{
	schedule(t->data);
}

/* Schedule again within ms at the latest (an earlier wake-up stays). */
static void wake_within(struct deliverer *d, uint64_t ms)
{
	if (!uv_is_active((uv_handle_t *)&d->timer) || uv_timer_get_due_in(&d->timer) > ms)
		uv_timer_start(&d->timer, on_timer, ms, 0);
}

/* Wake up when the earliest deferred delivery falls due. The store holds the
 * due times (wall clock), so this also covers deliveries deferred before a
 * restart, and a timer that fired a little before its row was due (the
 * loop's cached time lags the wall clock). Rows due now are fetched or in
 * flight; their completion schedules again. */
static void arm_timer(struct deliverer *d)
{
	int64_t now = util_now_ms(), next = 0;
	if (store_deliver_next_try(d->r->store, d->conf->name, now, &next) < 0) {
		wake_within(d, DL_RECORD_RETRY_MS);     /* ask again rather than forget */
		return;
	}
	if (next == 0)
		return;
	uint64_t in = (uint64_t)(next - now) + 1;
	wake_within(d, in);
}

static void timer_closed(uv_handle_t *h)
{
	struct deliverer *d = h->data;
	struct list_rt *l = d->l;
	if (l->draining == d) {
		l->draining = NULL;
		if (l->restart_pending && !d->r->stopping) {
			l->restart_pending = 0;
			deliver_start(d->r, l);
		}
	}
	if (d->backend_state)
		deliver_smtp_fini(d->backend_state);
	if (d->n_held)
		log_err("deliver", "records_lost", "list=%s n=%zu", d->conf->name, d->n_held);
	free(d->held);
	trust_release(d->trust);
	free(d);
}

static int flush_held(struct deliverer *d);

static void close_deliverer(struct deliverer *d)
{
	flush_held(d);          /* a last try: what stays held is delivered again */
	uv_timer_stop(&d->timer);
	uv_close((uv_handle_t *)&d->timer, timer_closed);
}

/* Keep an outcome the store refused; the first one of a run is logged. */
static void hold(struct deliverer *d, const struct dl_item *it, int64_t next_try, int err)
{
	if (d->n_held == d->cap_held) {
		size_t cap = d->cap_held ? 2 * d->cap_held : 16;
		struct held *h = realloc(d->held, cap * sizeof(*h));
		IL_ASSERT(h);
		d->held = h;
		d->cap_held = cap;
	}
	if (d->n_held == 0)
		log_err("store", "delivery_record_failed", "list=%s err=%s", d->conf->name,
			log_q(il_strerror(err)));
	struct held *h = &d->held[d->n_held++];
	h->seq = it->seq;
	memcpy(h->id, it->id, IL_SHA256_LEN);
	h->accepted_ms = it->accepted_ms;
	h->result = it->result;
	h->next_try = next_try;
	snprintf(h->error, sizeof(h->error), "%s", it->error);
	d->l->deliver_unsure = 1;
	wake_within(d, DL_RECORD_RETRY_MS);
}

static void count_delivered(struct deliverer *d, const uint8_t *id, int64_t accepted_ms, int64_t now)
{
	char hex[IL_ID_HEX_LEN + 1];
	d->l->delivered++;
	metrics_observe_delivery(d->l, now - accepted_ms);
	envelope_id_hex(id, hex);
	log_info("deliver", "delivered", "list=%s msg=%s", d->conf->name, hex);
}

static int record_held(struct deliverer *d, const struct held *h)
{
	struct il_store *st = d->r->store;
	const char *list = d->conf->name;
	if (h->result == DL_DONE)
		return store_deliver_done(st, list, &h->seq, 1);
	if (h->result == DL_PERMFAIL)
		return store_deliver_park(st, list, h->seq, h->error);
	return store_deliver_defer(st, list, h->seq, h->next_try, h->error);
}

/* Record the held outcomes, oldest first: 0 once none is left. */
static int flush_held(struct deliverer *d)
{
	size_t i = 0;
	int e = 0;
	if (d->n_held == 0)
		return 0;
	int64_t now = util_now_ms();
	for (; i < d->n_held; i++) {
		if ((e = record_held(d, &d->held[i])) < 0)
			break;
		if (d->held[i].result == DL_DONE)
			count_delivered(d, d->held[i].id, d->held[i].accepted_ms, now);
	}
	memmove(d->held, d->held + i, (d->n_held - i) * sizeof(*d->held));
	d->n_held -= i;
	if (e < 0) {
		wake_within(d, DL_RECORD_RETRY_MS);
		return e;
	}
	if (i > 0)
		log_info("store", "delivery_records_resumed", "list=%s n=%zu", d->conf->name, i);
	return 0;
}

/* Record one outcome (not DL_DONE: those are recorded in batches). */
static void record_failure(struct deliverer *d, struct dl_item *it)
{
	struct relay *r = d->r;
	const char *list = d->conf->name;
	char hex[IL_ID_HEX_LEN + 1];
	int e;
	envelope_id_hex(it->id, hex);
	d->l->deliver_unsure = 1;
	if (it->result == DL_PERMFAIL) {
		if ((e = store_deliver_park(r->store, list, it->seq, it->error)) < 0)
			hold(d, it, 0, e);
		log_warn("deliver", "parked", "list=%s msg=%s err=%s", list, hex, log_q(it->error));
		return;
	}
	int shift = it->attempts < 12 ? it->attempts : 12;
	int64_t delay = (int64_t)1 << shift;
	if (delay > DL_BACKOFF_MAX_S)
		delay = DL_BACKOFF_MAX_S;
	int64_t next = util_now_ms() + delay * 1000;
	if ((e = store_deliver_defer(r->store, list, it->seq, next, it->error)) < 0)
		hold(d, it, next, e);
	log_warn("deliver", "deferred", "list=%s msg=%s retry_s=%lld err=%s", list, hex,
		 (long long)delay, log_q(it->error));
	wake_within(d, (uint64_t)delay * 1000);
}

static void record_done(struct deliverer *d, const int64_t *seqs, const struct dl_item *items,
			size_t n)
{
	if (n == 0)
		return;
	int e = store_deliver_done(d->r->store, d->conf->name, seqs, n);
	int64_t now = util_now_ms();
	for (size_t i = 0; i < n; i++) {
		if (e < 0)
			hold(d, &items[i], 0, e);
		else
			count_delivered(d, items[i].id, items[i].accepted_ms, now);
	}
}

/* ---- batch backend (maildir) ---- */

static void batch_work(uv_work_t *req)
{
	struct dl_job *j = req->data;
	deliver_maildir_batch(j->d->conf->deliver_target, j->items, j->n);
}

static void batch_after(uv_work_t *req, int status)
{
	(void)status;
	struct dl_job *j = req->data;
	struct deliverer *d = j->d;
	int64_t *done = malloc((j->n ? j->n : 1) * sizeof(*done));
	struct dl_item *ditems = malloc((j->n ? j->n : 1) * sizeof(*ditems));
	size_t nd = 0;
	IL_ASSERT(done && ditems);
	for (size_t i = 0; i < j->n; i++) {
		if (j->items[i].result == DL_DONE) {
			ditems[nd] = j->items[i];
			done[nd++] = j->items[i].seq;
		} else {
			record_failure(d, &j->items[i]);
		}
	}
	record_done(d, done, ditems, nd);
	free(done);
	free(ditems);
	int full = j->n == DL_BATCH;
	for (size_t i = 0; i < j->n; i++)
		item_clear(&j->items[i]);
	free(j->items);
	free(j);
	d->running = 0;
	if (d->stopped) {
		close_deliverer(d);
		return;
	}
	if (d->again || full) {
		d->again = 0;
		schedule(d);
	}
}

/* ---- async backends (smtp, exec) ---- */

void dl_item_finished(struct dl_item *it)
{
	struct deliverer *d = it->d;
	for (struct dl_item **pp = &d->inflight; *pp; pp = &(*pp)->next)
		if (*pp == it) {
			*pp = it->next;
			break;
		}
	d->running--;
	if (it->result == DL_DONE)
		record_done(d, &it->seq, it, 1);
	else
		record_failure(d, it);
	item_clear(it);
	free(it);
	if (d->stopped) {
		if (d->running == 0)
			close_deliverer(d);
		return;
	}
	schedule(d);
}

/* Fill item from a stored envelope; 0 or negative (then parked). */
static int item_from_entry(struct deliverer *d, const struct store_entry *e, struct dl_item *it)
{
	struct il_envelope env = { 0 };
	/* Our own stored bytes: any size we once accepted decodes, and the
	 * store has the id (hashing 2 KiB again cost 1.5 % of a receiver). */
	if (envelope_decode_stored(e->blob, e->blob_len, e->id, &env) < 0) {
		store_deliver_park(d->r->store, d->conf->name, e->seq, "undecodable in store");
		return IL_EMALFORMED;
	}
	it->d = d;
	it->seq = e->seq;
	memcpy(it->id, env.id, IL_SHA256_LEN);
	it->headers = deliver_relay_headers(&env);
	IL_ASSERT(it->headers);
	it->msg = env.msg;
	it->msg_len = env.msg_len;
	it->attempts = e->attempts;
	/* Maybe handed to a backend before: by an earlier run of the relay
	 * (it may have died between the file's rename and the store's
	 * record), or by an attempt in this run that went wrong. */
	it->maybe_there = e->seq <= d->r->boot_seq || e->attempts > 0 || d->l->deliver_unsure;
	it->accepted_ms = e->queued_ms;         /* deliveries: the message's received time */
	env.msg = NULL;
	return 0;
}

static void schedule_async(struct deliverer *d)
{
	struct relay *r = d->r;
	int max = d->conf->max_deliveries > 0 ? d->conf->max_deliveries : 4;
	if (d->running >= max)
		return;
	int64_t skip[64];
	size_t ns = 0;
	for (struct dl_item *it = d->inflight; it && ns < 64; it = it->next)
		skip[ns++] = it->seq;
	struct store_entry ents[64];
	size_t n = 0;
	if (store_deliver_fetch(r->store, d->conf->name, util_now_ms(), durable_seq(r),
				(size_t)(max - d->running), skip, ns, ents, &n) < 0) {
		wake_within(d, DL_RECORD_RETRY_MS);     /* no timer would be armed */
		return;
	}
	if (n < (size_t)(max - d->running))
		arm_timer(d);
	for (size_t i = 0; i < n; i++) {
		struct dl_item *it = calloc(1, sizeof(*it));
		IL_ASSERT(it);
		if (item_from_entry(d, &ents[i], it) < 0) {
			free(it);
			continue;
		}
		it->next = d->inflight;
		d->inflight = it;
		d->running++;
		if (d->conf->deliver_kind == IL_DELIVER_SMTP)
			deliver_smtp_start(it);
		else
			deliver_exec_start(it);
	}
	store_entries_free(ents, n);
}

static void schedule(struct deliverer *d)
{
	struct relay *r = d->r;
	if (r->stopping || d->stopped)
		return;
	if (d->n_held && flush_held(d) < 0)
		return;         /* nothing new before the store records again */
	if (d->conf->deliver_kind != IL_DELIVER_MAILDIR) {
		schedule_async(d);
		return;
	}
	if (d->running) {
		d->again = 1;
		return;
	}
	struct store_entry ents[DL_BATCH];
	size_t n = 0;
	if (store_deliver_fetch(r->store, d->conf->name, util_now_ms(), durable_seq(r), DL_BATCH, NULL,
				0, ents, &n) < 0) {
		wake_within(d, DL_RECORD_RETRY_MS);     /* no timer would be armed */
		return;
	}
	if (n < DL_BATCH)
		arm_timer(d);
	if (n == 0)
		return;
	struct dl_job *j = calloc(1, sizeof(*j));
	IL_ASSERT(j);
	j->items = calloc(n, sizeof(*j->items));
	IL_ASSERT(j->items);
	j->d = d;
	for (size_t i = 0; i < n; i++)
		if (item_from_entry(d, &ents[i], &j->items[j->n]) == 0)
			j->n++;
	store_entries_free(ents, n);
	d->running = 1;
	j->req.data = j;
	IL_ASSERT(uv_queue_work(r->loop, &j->req, batch_work, batch_after) == 0);
}

int deliver_start(struct relay *r, struct list_rt *l)
{
	const struct il_list_conf *lc = l->conf;
	if (lc->deliver_kind == IL_DELIVER_NONE)
		return 0;
	struct deliverer *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->r = r;
	d->l = l;
	d->conf = lc;
	d->trust = trust_hold(r->trust);
	uv_timer_init(r->loop, &d->timer);
	d->timer.data = d;
	l->dl = d;
	int e = 0;
	if (lc->deliver_kind == IL_DELIVER_MAILDIR)
		e = deliver_maildir_prepare(lc->deliver_target);
	else if (lc->deliver_kind == IL_DELIVER_SMTP)
		e = deliver_smtp_init(d, &d->backend_state);
	if (e < 0) {
		log_err("deliver", "target_unusable", "list=%s target=%s err=%s", lc->name,
			log_q(lc->deliver.s), log_q(il_strerror(e)));
		return e;
	}
	schedule(d);    /* whatever was pending before a restart */
	return 0;
}

void deliver_kick(struct list_rt *l)
{
	if (l->dl)
		schedule(l->dl);
}

void relay_kick_deliveries(struct relay *r)
{
	for (size_t i = 0; i < r->n_lists; i++)
		deliver_kick(r->lists[i]);
}

/* Work under way finishes first: its completion needs d and closes it. */
void deliver_stop(struct list_rt *l)
{
	struct deliverer *d = l->dl;
	if (!d)
		return;
	l->dl = NULL;
	l->draining = d;
	d->stopped = 1;
	if (!d->running)
		close_deliverer(d);
}
