/*
 * submit.c — local posts (LMTP and `interlistctl submit`): checked, prepared
 * and signed on the loop as they arrive, stored by group commit.
 *
 * A signed post waits in r->submits until the end of a loop iteration (a
 * uv_check handle) where no fdatasync is running. There every waiting post
 * is stored in one transaction, and the posters are answered once one
 * fdatasync covers it. Holding posts while a sync runs costs no latency
 * (their commit could not be durable before the next sync anyway) and makes
 * the transactions big: a commit writes every page it touches to the WAL,
 * and the random-keyed id index touches about one page per post whatever
 * the group's size.
 *
 * Signing stays on the loop: handing each group to the thread pool was
 * measured slower (more CPU per post for the hand-offs, and on two cores
 * shared with the receiver there is no idle core to sign on).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "il/error.h"
#include "il/log.h"
#include "il/mailhdr.h"
#include "il/util.h"
#include "relay.h"
#include "wire.h"

/* A group is flushed at once past this size, sync or no sync. */
#define SUBMIT_GROUP_MAX 1024

struct submit {
	struct submit *next;
	struct relay *r;
	struct il_envelope env;
	char *message_id;
	struct list_rt *l;
	submit_cb cb;
	void *arg;
	/* outcome, kept for the answer after the sync */
	int err;
	enum local_kind kind;
	uint8_t id[IL_SHA256_LEN];
	char list[IL_LIST_MAX + 1];
	enum il_tlp tlp;
};

static void submit_free(struct submit *x)
{
	envelope_free(&x->env);
	free(x->message_id);
	free(x);
}

static void submits_durable(void *arg, int err)
{
	struct submit *x = arg, *next;
	struct relay *r = x ? x->r : NULL;
	for (; x; x = next) {
		next = x->next;
		char hex[IL_ID_HEX_LEN + 1];
		int e = x->err ? x->err : err;
		if (e < 0) {
			x->cb(x->arg, e == IL_EFULL ? e : IL_EFULL, NULL, LOCAL_NEW, x->message_id);
		} else {
			if (x->kind == LOCAL_NEW)
				x->l->ingested++;
			envelope_id_hex(x->id, hex);
			log_info("ingest", x->kind == LOCAL_NEW ? "posted" : "repeat",
				 "list=%s msg=%s tlp=%s", x->list, hex, tlp_name(x->tlp));
			x->cb(x->arg, 0, x->id, x->kind, x->message_id);
		}
		submit_free(x);
	}
	if (r)
		ingest_answers_flush(r);
}

/* Store a signed group in one transaction; its posters hear back once the
 * commit is on disk. */
static void store_group(struct relay *r, struct submit *s, size_t n)
{
	struct il_envelope **envs = calloc(n, sizeof(*envs));
	char **msgids = calloc(n, sizeof(*msgids));
	int *res = calloc(n, sizeof(*res));
	uint8_t (*ids)[IL_SHA256_LEN] = calloc(n, IL_SHA256_LEN);
	int e = -ENOMEM;
	size_t m = 0;
	if (envs && msgids && res && ids) {
		for (struct submit *x = s; x; x = x->next) {
			envs[m] = &x->env;
			msgids[m++] = x->message_id;
		}
		e = accept_store(r, envs, msgids, m, 1, res, ids);
	}
	m = 0;
	for (struct submit *x = s; x; x = x->next) {
		if (e < 0 || res[m] == RES_TEMPFAIL) {
			x->err = e < 0 ? e : IL_EFULL;
		} else {
			x->kind = res[m] == RES_DUPLICATE ? LOCAL_REPEAT : LOCAL_NEW;
			memcpy(x->id, ids[m], IL_SHA256_LEN);
		}
		m++;
		envelope_free(&x->env);         /* stored (or not): the bytes are done with */
	}
	free(envs);
	free(msgids);
	free(res);
	free(ids);
	durable_after(r, submits_durable, s);
}

void relay_submit_flush(struct relay *r)
{
	size_t n = r->submits_n;
	struct submit *s = r->submits;
	if (n == 0)
		return;
	/* Detached first: the answers may come at once (no deferred sync). */
	r->submits = NULL;
	r->submits_tail = &r->submits;
	r->submits_n = 0;
	if (!r->submits_closed)
		uv_check_stop(&r->submit_check);
	store_group(r, s, n);
}

/* Our delivery coming back carries X-Interlist-Id and X-Interlist-Time (its
 * origin time): one index search finds it, and so does (list, Message-ID)
 * when the list dropped the time but kept the Message-ID. Nothing scans by
 * id alone here: any list member can write these headers. */
static int is_our_delivery(struct relay *r, const char *list, const struct il_mailinfo *mi)
{
	uint8_t id[IL_SHA256_LEN];
	if (mi->has_interlist_time &&
	    store_has_id(r->store, mi->interlist_id, mi->interlist_time_ms) > 0)
		return 1;
	return mi->message_id && store_find_msgid(r->store, list, mi->message_id, id) > 0 &&
	       memcmp(id, mi->interlist_id, IL_SHA256_LEN) == 0;
}

static void kick_once(uv_idle_t *h)
{
	uv_idle_stop(h);
}

/* At the end of a loop iteration: store the waiting posts unless a sync is
 * running, whose end stores them (relay_submit_flush from durable.c). */
static void flush_submits(uv_check_t *h)
{
	struct relay *r = h->data;
	if (r->submits_n == 0) {
		uv_check_stop(h);
		return;
	}
	if (r->submits_n < SUBMIT_GROUP_MAX && durable_syncing(r))
		return;
	relay_submit_flush(r);
	/* Without deferred syncs (r->durable NULL) the group was answered
	 * just now, and a pipelined post behind one may be waiting already:
	 * this handle does not run twice in an iteration, and an active check
	 * handle lets the loop block in poll. An idle one does not. */
	if (r->submits_n && !durable_syncing(r))
		uv_idle_start(&r->submit_kick, kick_once);
}

int relay_submit_async(struct relay *r, const char *list, const uint8_t *msg, size_t len,
		       submit_cb cb, void *arg)
{
	struct list_rt *l = relay_list(r, list);
	struct il_mailinfo mi = { 0 };
	struct submit *s = NULL;
	uint8_t *prep = NULL;
	size_t plen = 0;
	char hex[IL_ID_HEX_LEN + 1];
	int e;
	if (!l) {
		r->c.unknown_list++;
		return IL_EFIELD;
	}
	if (r->submits_closed)
		return IL_EFULL;        /* shutting down: try later */
	if ((e = mailhdr_parse(msg, len, r->cfg->max_message_bytes, &mi)) < 0) {
		if (e == IL_ETOOLARGE)
			r->c.too_large++;
		else
			r->c.malformed++;
		return e;
	}
	/* Our own delivery coming back through the list: a loop, not a post. */
	if (mi.has_interlist_id && is_our_delivery(r, list, &mi)) {
		r->c.loops++;
		envelope_id_hex(mi.interlist_id, hex);
		log_info("ingest", "loop", "list=%s msg=%s", list, hex);
		cb(arg, 0, mi.interlist_id, LOCAL_LOOP, mi.message_id);
		e = 0;
		goto out;
	}
	/* A repeated Message-ID is found by store_put, in the group's own
	 * transaction: a lookup here would cost a read transaction per post. */
	if (mi.tlp_unknown)
		log_warn("ingest", "tlp_unknown", "list=%s message_id=%s read_as=RED", list,
			 log_q(mi.message_id));
	if (!(s = calloc(1, sizeof(*s)))) {
		e = -ENOMEM;
		goto out;
	}
	if ((e = mailhdr_prepare(msg, len, &prep, &plen)) < 0)
		goto out;
	s->tlp = mi.tlp_found ? mi.tlp : l->conf->default_tlp;
	if ((e = envelope_create_version(&s->env, (uint8_t)r->cfg->envelope_version, r->cfg->id,
					 list, (uint64_t)util_now_ms(), s->tlp, prep, plen,
					 (uint8_t)r->cfg->hop_limit, r->sign_key)) < 0)
		goto out;
	s->message_id = mi.message_id;
	mi.message_id = NULL;
	s->r = r;
	s->l = l;
	snprintf(s->list, sizeof(s->list), "%s", list);
	s->cb = cb;
	s->arg = arg;
	*r->submits_tail = s;
	r->submits_tail = &s->next;
	r->submits_n++;
	s = NULL;
	uv_check_start(&r->submit_check, flush_submits);
	e = 0;
out:
	if (s)
		envelope_free(&s->env);
	free(s);
	free(prep);
	mailhdr_free(&mi);
	return e;
}

void relay_submit_init(struct relay *r)
{
	r->submits = NULL;
	r->submits_tail = &r->submits;
	r->submits_n = 0;
	uv_check_init(r->loop, &r->submit_check);
	r->submit_check.data = r;
	uv_idle_init(r->loop, &r->submit_kick);
}

void relay_submit_close(struct relay *r)
{
	/* Anything waiting is stored here, and answered after its sync,
	 * before the handle goes. */
	relay_submit_flush(r);
	uv_check_stop(&r->submit_check);
	uv_close((uv_handle_t *)&r->submit_check, NULL);
	uv_idle_stop(&r->submit_kick);
	uv_close((uv_handle_t *)&r->submit_kick, NULL);
	r->submits_closed = 1;
}
