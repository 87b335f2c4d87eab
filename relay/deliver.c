/*
 * deliver.c — per-list delivery scheduling. The loop fetches due deliveries
 * from the store, a thread-pool job hands them to the backend (file or
 * network I/O only), and the loop records each outcome: done (never
 * repeated), deferred with capped exponential backoff, or parked.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "il/error.h"
#include "il/log.h"
#include "il/util.h"
#include "deliver.h"

#define DL_BATCH 128
#define DL_BACKOFF_MAX_S 3600

struct deliverer {
	struct relay *r;
	struct list_rt *l;
	int running;
	int again;                      /* kicked while a job was running */
	int stopped;                    /* deliver_stop() came while a job ran */
	uv_timer_t timer;               /* next deferred retry */
	struct dl_job *job;
};

struct dl_job {
	uv_work_t req;
	struct deliverer *d;
	struct dl_item *items;
	size_t n;
};

char *deliver_relay_headers(const struct il_envelope *env)
{
	char hex[IL_ID_HEX_LEN + 1], path[IL_PATH_MAX * (IL_ID_MAX + 1) + 1];
	char *out = NULL;
	envelope_id_hex(env->id, hex);
	envelope_path_str(env, path, sizeof(path));
	if (asprintf(&out,
		     "X-Interlist-Id: %s\nX-Interlist-Origin: %s\nX-Interlist-Path: %s\n"
		     "X-Interlist-TLP: %s\nX-Interlist-List: %s\n",
		     hex, env->origin, path, tlp_name(env->tlp), env->list) < 0)
		return NULL;
	return out;
}

static void job_free(struct dl_job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		free(j->items[i].headers);
		free(j->items[i].msg);
	}
	free(j->items);
	free(j);
}

static void work(uv_work_t *req)
{
	struct dl_job *j = req->data;
	const struct il_list_conf *lc = j->d->l->conf;
	switch (lc->deliver_kind) {
	case IL_DELIVER_MAILDIR:
		deliver_maildir_batch(lc->deliver_target, j->items, j->n);
		break;
	default:
		for (size_t i = 0; i < j->n; i++) {
			j->items[i].result = 1;
			snprintf(j->items[i].error, sizeof(j->items[i].error),
				 "delivery method not available in this build");
		}
	}
}

static void schedule(struct deliverer *d);
static void close_deliverer(struct deliverer *d);

static void on_timer(uv_timer_t *t)
{
	schedule(t->data);
}

static void after(uv_work_t *req, int status)
{
	(void)status;
	struct dl_job *j = req->data;
	struct deliverer *d = j->d;
	struct relay *r = d->r;
	int64_t *done = malloc((j->n ? j->n : 1) * sizeof(*done));
	size_t nd = 0;
	IL_ASSERT(done);
	int64_t now = util_now_ms();
	for (size_t i = 0; i < j->n; i++) {
		struct dl_item *it = &j->items[i];
		char hex[IL_ID_HEX_LEN + 1];
		envelope_id_hex(it->id, hex);
		if (it->result == 0) {
			done[nd++] = it->seq;
			log_info("deliver", "delivered", "list=%s msg=%s", d->l->conf->name, hex);
			continue;
		}
		if (it->result == 2) {
			store_deliver_park(r->store, d->l->conf->name, it->seq, it->error);
			log_warn("deliver", "parked", "list=%s msg=%s err=%s", d->l->conf->name, hex,
				 log_q(it->error));
			continue;
		}
		int shift = it->attempts < 12 ? it->attempts : 12;
		int64_t delay = (int64_t)1 << shift;
		if (delay > DL_BACKOFF_MAX_S)
			delay = DL_BACKOFF_MAX_S;
		store_deliver_defer(r->store, d->l->conf->name, it->seq, now + delay * 1000, it->error);
		log_warn("deliver", "deferred", "list=%s msg=%s retry_s=%lld err=%s", d->l->conf->name,
			 hex, (long long)delay, log_q(it->error));
		if (!uv_is_active((uv_handle_t *)&d->timer) ||
		    uv_timer_get_due_in(&d->timer) > (uint64_t)delay * 1000)
			uv_timer_start(&d->timer, on_timer, (uint64_t)delay * 1000, 0);
	}
	int e = store_deliver_done(r->store, d->l->conf->name, done, nd);
	if (e < 0)
		log_err("store", "delivery_record_failed", "list=%s err=%s", d->l->conf->name,
			log_q(il_strerror(e)));
	else
		d->l->delivered += nd;
	free(done);
	int full = j->n == DL_BATCH;
	job_free(j);
	d->job = NULL;
	d->running = 0;
	if (d->stopped) {
		close_deliverer(d);
		return;
	}
	if ((d->again || full) && !r->stopping) {
		d->again = 0;
		schedule(d);
	}
}

static void schedule(struct deliverer *d)
{
	struct relay *r = d->r;
	if (d->running) {
		d->again = 1;
		return;
	}
	if (r->stopping || d->stopped)
		return;
	struct store_entry ents[DL_BATCH];
	size_t n = 0;
	if (store_deliver_fetch(r->store, d->l->conf->name, util_now_ms(), DL_BATCH, NULL, 0, ents,
				&n) < 0 || n == 0)
		return;
	struct dl_job *j = calloc(1, sizeof(*j));
	IL_ASSERT(j);
	j->items = calloc(n, sizeof(*j->items));
	IL_ASSERT(j->items);
	j->d = d;
	for (size_t i = 0; i < n; i++) {
		struct il_envelope env = { 0 };
		struct dl_item *it = &j->items[j->n];
		/* Our own stored bytes: any size we once accepted decodes. */
		if (envelope_decode(ents[i].blob, ents[i].blob_len, SIZE_MAX, &env, NULL) < 0) {
			store_deliver_park(r->store, d->l->conf->name, ents[i].seq, "undecodable in store");
			continue;
		}
		it->seq = ents[i].seq;
		memcpy(it->id, env.id, IL_SHA256_LEN);
		it->headers = deliver_relay_headers(&env);
		IL_ASSERT(it->headers);
		it->msg = env.msg;
		it->msg_len = env.msg_len;
		it->attempts = ents[i].attempts;
		env.msg = NULL;
		j->n++;
	}
	store_entries_free(ents, n);
	d->running = 1;
	d->job = j;
	j->req.data = j;
	IL_ASSERT(uv_queue_work(r->loop, &j->req, work, after) == 0);
}

int deliver_start(struct relay *r, struct list_rt *l)
{
	if (l->conf->deliver_kind == IL_DELIVER_NONE)
		return 0;
	struct deliverer *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->r = r;
	d->l = l;
	uv_timer_init(r->loop, &d->timer);
	d->timer.data = d;
	l->dl = d;
	if (l->conf->deliver_kind == IL_DELIVER_MAILDIR) {
		int e = deliver_maildir_prepare(l->conf->deliver_target);
		if (e < 0) {
			log_err("deliver", "maildir_unusable", "list=%s path=%s err=%s", l->conf->name,
				log_q(l->conf->deliver_target), log_q(il_strerror(e)));
			return e;
		}
	}
	schedule(d);    /* whatever was pending before a restart */
	return 0;
}

void deliver_kick(struct list_rt *l)
{
	if (l->dl)
		schedule(l->dl);
}

static void timer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void close_deliverer(struct deliverer *d)
{
	uv_timer_stop(&d->timer);
	uv_close((uv_handle_t *)&d->timer, timer_closed);
}

/* A running job finishes first: its after-callback needs d and closes it. */
void deliver_stop(struct list_rt *l)
{
	struct deliverer *d = l->dl;
	if (!d)
		return;
	l->dl = NULL;
	d->stopped = 1;
	if (!d->running)
		close_deliverer(d);
}
