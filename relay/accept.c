/*
 * accept.c — the intake: envelopes from peers (checked, verified on the
 * thread pool, stored in one transaction per batch) and local posts (signed
 * in submit.c). Both end in accept_store(), which routes, stores and kicks
 * the peers and deliveries that got new work.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "il/error.h"
#include "il/log.h"
#include "il/mailhdr.h"
#include "il/util.h"
#include "relay.h"

/* Peers an accepted envelope (path already ending with us) goes to. *held
 * gets HELD_TLP when TLP kept it from at least one peer, HELD_HOPS when its
 * path has reached its hop limit (every next relay would refuse it, so it
 * goes to none). */
enum { HELD_TLP = 1, HELD_HOPS = 2 };

static size_t route(struct relay *r, const struct il_envelope *env, const char **out, int *held)
{
	size_t n = 0;
	*held = 0;
	for (size_t i = 0; i < r->cfg->n_peers; i++) {
		const struct il_peer_conf *p = &r->cfg->peers[i];
		if (envelope_path_has(env, p->id) || !config_peer_has_list(p, env->list))
			continue;
		if (env->tlp == IL_TLP_RED || env->tlp > p->max_tlp) {
			*held |= HELD_TLP;
			continue;
		}
		out[n++] = p->id;
	}
	if (n > 0 && env->path_len >= env->hop_limit) {
		*held = HELD_HOPS;      /* it goes to no peer: TLP held it from none */
		n = 0;
	}
	return n;
}

static void synced_nothing_to_do(void *arg, int err)
{
	(void)arg;
	(void)err;
}

int accept_store(struct relay *r, struct il_envelope **envs, char **msgids, size_t n,
			int local, int *res, uint8_t (*ids)[IL_SHA256_LEN])
{
	int new_deliveries = 0;
	if (n == 0)
		return 0;
	struct store_item *items = calloc(n, sizeof(*items));
	uint8_t **blobs = calloc(n, sizeof(*blobs));
	const char **peers = calloc(n * (r->cfg->n_peers + 1), sizeof(*peers));
	int *held = calloc(n, sizeof(*held));
	int e = -ENOMEM;
	if (!items || !blobs || !peers || !held)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct il_envelope *env = envs[i];
		if (!local && (e = envelope_path_append(env, r->cfg->id)) < 0)
			goto out;
		size_t blen;
		if ((e = envelope_encode(env, &blobs[i], &blen)) < 0)
			goto out;
		const char **pp = peers + i * (r->cfg->n_peers + 1);
		struct list_rt *l = relay_list(r, env->list);
		items[i] = (struct store_item){
			.id = env->id, .list = env->list, .message_id = msgids[i],
			.origin = env->origin, .origin_time_ms = (int64_t)env->origin_time_ms,
			.tlp = env->tlp, .blob = blobs[i], .blob_len = blen, .peers = pp,
			.n_peers = route(r, env, pp, &held[i]),
			.deliver = !local && l && l->conf->deliver_kind != IL_DELIVER_NONE,
			.local = local,
		};
	}
	e = store_put(r->store, items, n);
	if (e < 0) {
		log_warn("store", "put_failed", "n=%zu err=%s", n, log_q(il_strerror(e)));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char hex[IL_ID_HEX_LEN + 1];
		if (ids)
			memcpy(ids[i], items[i].result == IL_EDUP ? items[i].dup_of : envs[i]->id,
			       IL_SHA256_LEN);
		if (items[i].result == IL_EDUP) {
			res[i] = RES_DUPLICATE;
			r->c.duplicates++;
			continue;
		}
		res[i] = RES_ACCEPTED;
		r->c.accepted++;
		if (held[i] & HELD_TLP)
			r->c.held_tlp++;
		envelope_id_hex(envs[i]->id, hex);
		if (held[i] & HELD_HOPS) {
			r->c.hop_limit++;
			log_info("relay", "not_forwarded", "msg=%s list=%s origin=%s reason=hop_limit "
				 "hops=%u", hex, envs[i]->list, envs[i]->origin, (unsigned)envs[i]->path_len);
		}
		log_debug("relay", "accepted", "msg=%s list=%s origin=%s peers=%zu", hex,
			  envs[i]->list, envs[i]->origin, items[i].n_peers);
		for (size_t k = 0; k < items[i].n_peers; k++) {
			struct peer *p = relay_peer(r, items[i].peers[k]);
			if (p)
				peer_kick(p);
		}
		struct list_rt *l = relay_list(r, envs[i]->list);
		if (l && items[i].deliver)
			new_deliveries = 1;
		if (l && items[i].deliver && !r->durable)
			deliver_kick(l);        /* synced already: deliver now */
	}
	/* Deferred sync: deliveries wait for the sync that puts the message
	 * on disk (durable.c kicks them then); make sure one runs. */
	if (new_deliveries && r->durable)
		durable_after(r, synced_nothing_to_do, NULL);
	e = 0;
out:
	/* Nothing stored: nothing may be reported as accepted. */
	if (e < 0)
		for (size_t i = 0; i < n; i++)
			res[i] = RES_TEMPFAIL;
	for (size_t i = 0; blobs && i < n; i++)
		free(blobs[i]);
	free(blobs);
	free(items);
	free(peers);
	free(held);
	return e;
}

/* ---- from peers ---- */

struct rx_batch *rx_batch_new(struct relay *r, const char *peer, size_t n)
{
	struct rx_batch *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->items = calloc(n ? n : 1, sizeof(*b->items));
	if (!b->items) {
		free(b);
		return NULL;
	}
	b->r = r;
	b->n = n;
	snprintf(b->peer, sizeof(b->peer), "%s", peer);
	for (size_t i = 0; i < n; i++)
		b->items[i].result = -1;
	return b;
}

void rx_batch_free(struct rx_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++) {
		envelope_free(&b->items[i].env);
		free(b->items[i].message_id);
	}
	if (b->trust)
		trust_release(b->trust);
	free(b->items);
	free(b);
}

static void count_refusal(struct relay *r, struct peer *p, int res, const char *peer,
			  const struct rx_item *it)
{
	switch (res) {
	case RES_MALFORMED: r->c.malformed++; break;
	case RES_TOO_LARGE: r->c.too_large++; break;
	case RES_UNKNOWN_LIST: r->c.unknown_list++; break;
	case RES_UNKNOWN_ORIGIN: r->c.unknown_origin++; break;
	case RES_BAD_SIGNATURE: r->c.bad_signature++; break;
	case RES_STALE: r->c.stale++; break;
	case RES_HOP_LIMIT: r->c.hop_limit++; break;
	case RES_NOT_ACCEPTED: r->c.not_accepted++; break;
	case RES_TLP: r->c.held_tlp++; break;
	default: return;
	}
	if (p)
		peer_count_rejected(p, 1);
	char hex[IL_ID_HEX_LEN + 1] = "-";
	if (it->env.msg)
		envelope_id_hex(it->env.id, hex);
	log_warn("relay", "refused", "peer=%s msg=%s origin=%s list=%s reason=%s", peer, hex,
		 it->env.msg ? it->env.origin : "-", it->env.msg ? it->env.list : "-",
		 wire_result_name(res));
}

/* Cheap checks on the loop thread, before any signature is verified. */
static int precheck(struct rx_batch *b, struct rx_item *it, int64_t now)
{
	struct relay *r = b->r;
	int e = envelope_decode(it->raw, it->raw_len, r->cfg->max_message_bytes, &it->env, NULL);
	if (e == IL_ETOOLARGE)
		return RES_TOO_LARGE;
	if (e < 0)
		return RES_MALFORMED;
	const struct il_envelope *env = &it->env;
	/* The sender appended itself when it accepted the message. */
	if (strcmp(env->path[env->path_len - 1], b->peer) != 0)
		return RES_MALFORMED;
	struct list_rt *l = relay_list(r, env->list);
	const struct il_peer_conf *pc = config_peer(r->cfg, b->peer);
	if (!l || !pc || !config_peer_has_list(pc, env->list))
		return RES_UNKNOWN_LIST;
	int has = store_has_id(r->store, env->id, (int64_t)env->origin_time_ms);
	if (has < 0)
		return RES_TEMPFAIL;
	if (has > 0 || envelope_path_has(env, r->cfg->id))
		return RES_DUPLICATE;
	if (env->tlp == IL_TLP_RED)
		return RES_TLP;
	if (l->conf->n_accept_origins) {
		int ok = 0;
		for (size_t i = 0; i < l->conf->n_accept_origins; i++)
			ok |= !strcmp(l->conf->accept_origins[i], env->origin);
		if (!ok)
			return RES_NOT_ACCEPTED;
	}
	if (!trust_find(b->trust, env->origin))
		return RES_UNKNOWN_ORIGIN;
	int64_t t = (int64_t)env->origin_time_ms;
	if (t < now - (int64_t)r->cfg->retention_days * 86400000 || t > now + RELAY_STALE_FUTURE_MS)
		return RES_STALE;
	if (env->path_len >= env->hop_limit)
		return RES_HOP_LIMIT;
	return -1;
}

struct verify_job {
	uv_work_t req;
	struct rx_batch *b;
	size_t from, to;
};

/* Thread pool: signatures and headers only; no loop or store state. */
static void verify_work(uv_work_t *req)
{
	struct verify_job *j = req->data;
	struct rx_batch *b = j->b;
	for (size_t i = j->from; i < j->to; i++) {
		struct rx_item *it = &b->items[i];
		if (it->result != -1)
			continue;
		const struct trust_entry *te = trust_find(b->trust, it->env.origin);
		int ok = 0;
		for (size_t k = 0; te && k < te->n_keys && !ok; k++)
			ok = envelope_verify(&it->env, te->keys[k]) == 0;
		if (!ok) {
			it->result = RES_BAD_SIGNATURE;
			continue;
		}
		struct il_mailinfo mi;
		if (mailhdr_parse(it->env.msg, it->env.msg_len, b->trust->cfg->max_message_bytes,
				  &mi) < 0) {
			it->result = RES_MALFORMED;
			continue;
		}
		it->message_id = mi.message_id;
		mi.message_id = NULL;
		mailhdr_free(&mi);
	}
}

static void rx_finish(struct rx_batch *b)
{
	struct relay *r = b->r;
	struct peer *p = relay_peer(r, b->peer);
	struct il_envelope **envs = calloc(b->n ? b->n : 1, sizeof(*envs));
	char **msgids = calloc(b->n ? b->n : 1, sizeof(*msgids));
	int *res = calloc(b->n ? b->n : 1, sizeof(*res));
	size_t *idx = calloc(b->n ? b->n : 1, sizeof(*idx));
	size_t m = 0;
	if (!envs || !msgids || !res || !idx) {
		for (size_t i = 0; i < b->n; i++)
			if (b->items[i].result == -1)
				b->items[i].result = RES_TEMPFAIL;
		goto done;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct rx_item *it = &b->items[i];
		if (it->result == -1) {
			envs[m] = &it->env;
			msgids[m] = it->message_id;
			idx[m++] = i;
		} else if (it->result == RES_DUPLICATE) {
			r->c.duplicates++;
		} else {
			count_refusal(r, p, it->result, b->peer, it);
		}
	}
	accept_store(r, envs, msgids, m, 0, res, NULL);
	for (size_t k = 0; k < m; k++)
		b->items[idx[k]].result = res[k];
done:
	free(envs);
	free(msgids);
	free(res);
	free(idx);
	b->done(b, b->arg);
}

static void verify_after(uv_work_t *req, int status)
{
	(void)status;
	struct verify_job *j = req->data;
	struct rx_batch *b = j->b;
	b->r->verify_jobs--;
	free(j);
	if (--b->pending_work == 0)
		rx_finish(b);
}

#define VERIFY_CHUNKS 2         /* one per core of the machines we target */

void rx_batch_start(struct rx_batch *b, rx_done_fn done, void *arg)
{
	struct relay *r = b->r;
	int64_t now = util_now_ms();
	size_t to_verify = 0;
	b->done = done;
	b->arg = arg;
	b->trust = trust_hold(r->trust);
	int rtx = store_read_begin(r->store);
	for (size_t i = 0; i < b->n; i++) {
		b->items[i].result = precheck(b, &b->items[i], now);
		if (b->items[i].result == -1)
			to_verify++;
	}
	store_read_end(r->store, rtx);
	if (to_verify == 0) {
		rx_finish(b);
		return;
	}
	size_t chunks = to_verify < 16 ? 1 : VERIFY_CHUNKS;
	size_t per = (b->n + chunks - 1) / chunks;
	struct verify_job *jobs[VERIFY_CHUNKS] = { 0 };
	for (size_t c = 0; c < chunks; c++) {
		jobs[c] = calloc(1, sizeof(*jobs[c]));
		IL_ASSERT(jobs[c]);
		jobs[c]->b = b;
		jobs[c]->from = c * per;
		jobs[c]->to = (c + 1) * per < b->n ? (c + 1) * per : b->n;
		jobs[c]->req.data = jobs[c];
	}
	/* Count every job before queueing any, so an early completion cannot
	 * finish the batch while the others are still to be queued. */
	b->pending_work = (int)chunks;
	for (size_t c = 0; c < chunks; c++) {
		r->verify_jobs++;
		IL_ASSERT(uv_queue_work(r->loop, &jobs[c]->req, verify_work, verify_after) == 0);
	}
}
