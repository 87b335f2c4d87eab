/*
 * session.c — the peering protocol (docs/protocol.md, "Session protocol").
 *
 * Dialer role (we have the peer's url): HELLO, then up to PUSH_WINDOW PUSH
 * requests carrying our queue for the peer, and one PULL long-poll that
 * brings the peer's queue for us back over the same connection and carries
 * our results for the previous pulled batch. Listener role: answer those.
 * A message leaves a queue only on an explicit result from the other side;
 * anything unanswered is sent again, and the receiver drops duplicates.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "il/error.h"
#include "il/log.h"
#include "il/util.h"
#include "net.h"

static const uint8_t zero_boot[WIRE_BOOT_LEN];

/*
 * max_rate: a token bucket per peer, refilled at max_rate per second and
 * holding at most one second's worth. What the bucket does not allow stays
 * queued in the store (the tick sends it later); nothing is dropped.
 */
static size_t rate_allow(struct peer *p, size_t want)
{
	double rate = p->conf->max_rate;
	if (rate <= 0)
		return want;
	int64_t now = util_mono_ms();
	double cap = rate < 1 ? 1 : rate;
	if (p->rate_ms == 0)
		p->rate_tokens = cap;
	else
		p->rate_tokens += (double)(now - p->rate_ms) * rate / 1000.0;
	if (p->rate_tokens > cap)
		p->rate_tokens = cap;
	p->rate_ms = now;
	size_t n = p->rate_tokens < 1 ? 0 : (size_t)p->rate_tokens;
	return n < want ? n : want;
}

static void rate_spend(struct peer *p, size_t n)
{
	if (p->conf->max_rate > 0)
		p->rate_tokens -= (double)n;
}

static void mark_connected(struct peer *p, const char *role)
{
	p->connects++;
	if (!(p->dstate == 2 && p->in_pipe) )
		p->connected_since_ms = util_now_ms();
	p->last_error[0] = 0;
	log_info("peer", "session_up", "peer=%s role=%s connects=%llu", p->id, role,
		 (unsigned long long)p->connects);
}

/* ---------- listener role ---------- */

static void rep_on_sent(struct aio_owner *o, int result);
static void rep_on_recv(struct aio_owner *o, int result);

void rep_recv(struct rep_ctx *rc)
{
	rc->sending = 0;
	rc->held_for = NULL;
	rc->o.on_done = rep_on_recv;
	nng_aio_set_timeout(rc->o.aio, NNG_DURATION_INFINITE);
	nng_ctx_recv(rc->ctx, rc->o.aio);
}

static void rep_on_recv(struct aio_owner *o, int result)
{
	struct rep_ctx *rc = (struct rep_ctx *)o;
	if (result == NNG_ECLOSED || o->net->r->stopping)
		return;
	if (result) {
		rep_recv(rc);
		return;
	}
	nng_msg *msg = nng_aio_get_msg(o->aio);
	nng_aio_set_msg(o->aio, NULL);
	rc->pipe = nng_pipe_id(nng_msg_get_pipe(msg));
	session_listener_request(rc, msg);
}

static void rep_on_sent(struct aio_owner *o, int result)
{
	struct rep_ctx *rc = (struct rep_ctx *)o;
	if (result) {
		nng_msg *m = nng_aio_get_msg(o->aio);
		nng_aio_set_msg(o->aio, NULL);
		if (m)
			nng_msg_free(m);
		if (result == NNG_ECLOSED)
			return;
	}
	rep_recv(rc);
}

void rep_reply(struct rep_ctx *rc, struct wbuf *b)
{
	nng_msg *m = NULL;
	if (b->err || nng_msg_alloc(&m, 0) || nng_msg_append(m, b->p, b->len)) {
		/* No memory for a reply: drop the request; the peer times out and resends. */
		if (m)
			nng_msg_free(m);
		wbuf_free(b);
		rep_recv(rc);
		return;
	}
	wbuf_free(b);
	rc->sending = 1;
	rc->o.on_done = rep_on_sent;
	/* A peer that stops reading must not pin this context for ever. */
	nng_aio_set_timeout(rc->o.aio, REQ_TIMEOUT_MS);
	nng_aio_set_msg(rc->o.aio, m);
	nng_ctx_send(rc->ctx, rc->o.aio);
}

static void reply_status(struct rep_ctx *rc, uint8_t status)
{
	struct wbuf b = { 0 };
	wire_reply_header(&b, status, rc->o.net->r->boot);
	rep_reply(rc, &b);
}

/* Who sent it, proven by the request signature: NULL (and a reply sent) if not. */
static struct peer *authenticate(struct rep_ctx *rc, const struct wire_req *q)
{
	struct relay *r = rc->o.net->r;
	const char *why = NULL;
	uint8_t status = WIRE_AUTH;
	struct peer *p = relay_peer(r, q->sender);
	const struct trust_entry *te = p ? trust_find(r->trust, q->sender) : NULL;
	int64_t now = util_now_ms();
	if (!p || !te)
		why = "unknown sender";
	else if (strcmp(q->receiver, r->cfg->id) != 0)
		why = "request for another relay";
	else if ((int64_t)q->time_ms < now - RELAY_AUTH_WINDOW_MS ||
		 (int64_t)q->time_ms > now + RELAY_AUTH_WINDOW_MS)
		why = "time outside the window";
	else if (wire_req_verify(q, te->keys, te->n_keys) < 0)
		why = "bad request signature";
	if (why) {
		r->c.auth_failed++;
		log_warn("peer", "auth_failed", "claimed=%s reason=%s", q->sender, log_q(why));
		reply_status(rc, status);
		return NULL;
	}
	if (q->type != WIRE_HELLO && memcmp(q->boot, r->boot, WIRE_BOOT_LEN) != 0) {
		reply_status(rc, WIRE_REHELLO);
		return NULL;
	}
	/* Remembered while the request itself would pass the time check. */
	if (!nonce_cache_add(r->nonces, q->sender, q->nonce,
			     (int64_t)q->time_ms + RELAY_AUTH_WINDOW_MS + 1000)) {
		r->c.replays++;
		log_debug("peer", "replay", "peer=%s", q->sender);
		reply_status(rc, WIRE_REPLAY);
		return NULL;
	}
	return p;
}

static void listener_seen(struct peer *p, uint32_t pipe, int hello)
{
	p->last_seen_ms = util_now_ms();
	if (p->in_pipe != pipe) {
		int was = p->in_pipe != 0 || p->dstate == 2;
		p->in_pipe = pipe;
		if (!was)
			p->connected_since_ms = util_now_ms();
		if (hello)
			mark_connected(p, "listener");
	}
	if (hello) {
		/* A new session: whatever the last pull batch was, send it again. */
		p->out_cursor = 0;
		p->ob.token = 0;
		/* Both sides dial: the session dialled by the lower id carries both
		 * directions; the higher id closes its own dialer until that ends. */
		if (p->dials && strcmp(p->r->cfg->id, p->id) > 0) {
			log_info("peer", "dial_yield", "peer=%s", p->id);
			peer_dial_stop(p);
			p->yielded = 1;
			peer_kick(p);
		}
	}
}

static int add_slice(void *arg, const uint8_t *ptr, size_t n)
{
	struct rx_batch *b = arg;
	size_t i = (size_t)b->pending_work++;
	b->items[i].raw = ptr;
	b->items[i].raw_len = n;
	return 0;
}

/* Count the envelopes first, so the batch is allocated once. */
static struct rx_batch *batch_from(struct relay *r, const char *peer, struct rbuf *body, void *frame)
{
	struct rbuf probe = *body;
	uint32_t count = rbuf_u32(&probe);
	if (probe.err || count > WIRE_MAX_BATCH)
		return NULL;
	struct rx_batch *b = rx_batch_new(r, peer, count);
	if (!b)
		return NULL;
	b->pending_work = 0;
	if (wire_envelopes_each(body, add_slice, b) < 0 || (size_t)b->pending_work != count) {
		rx_batch_free(b);
		return NULL;
	}
	b->pending_work = 0;
	b->frame = frame;
	return b;
}

struct pending_reply {
	struct rep_ctx *rc;
	struct wbuf w;
};

/* The batch is committed; its results go out once the commit is on disk. */
static void push_durable(void *arg, int err)
{
	struct pending_reply *pr = arg;
	if (err < 0) {
		wbuf_free(&pr->w);
		reply_status(pr->rc, WIRE_TRYLATER);
	} else {
		rep_reply(pr->rc, &pr->w);
	}
	free(pr);
}

static void push_done(struct rx_batch *b, void *arg)
{
	struct rep_ctx *rc = arg;
	struct relay *r = b->r;
	struct pending_reply *pr = calloc(1, sizeof(*pr));
	IL_ASSERT(pr);
	pr->rc = rc;
	wire_reply_header(&pr->w, WIRE_OK, r->boot);
	wbuf_u32(&pr->w, (uint32_t)b->n);
	for (size_t i = 0; i < b->n; i++)
		wbuf_u8(&pr->w, (uint8_t)b->items[i].result);
	nng_msg_free(b->frame);
	rx_batch_free(b);
	durable_after(r, push_durable, pr);
}

static void log_refused_by_peer(struct peer *p, const uint8_t *id, int res)
{
	char hex[IL_ID_HEX_LEN + 1];
	envelope_id_hex(id, hex);
	log_warn("peer", "refused_by_peer", "peer=%s msg=%s reason=%s", p->id, hex,
		 wire_result_name(res));
}

/* Results for messages we sent: acknowledge all but TEMPFAIL. Returns the
 * number of TEMPFAIL results. */
static size_t apply_results(struct peer *p, const uint8_t (*ids)[IL_SHA256_LEN],
			    const int64_t *seqs, size_t n, const uint8_t *res)
{
	int64_t *ack = malloc((n ? n : 1) * sizeof(*ack));
	size_t na = 0, temp = 0;
	IL_ASSERT(ack);
	for (size_t i = 0; i < n; i++) {
		if (res[i] == RES_TEMPFAIL) {
			temp++;
			continue;
		}
		if (res[i] == RES_ACCEPTED || res[i] == RES_DUPLICATE)
			p->sent++;
		else
			log_refused_by_peer(p, ids[i], res[i]);
		ack[na++] = seqs[i];
	}
	int e = store_queue_ack(p->r->store, p->id, ack, na);
	if (e < 0) {
		/* Still queued: count them as unanswered so they go again. */
		log_warn("store", "ack_failed", "peer=%s err=%s", p->id, log_q(il_strerror(e)));
		temp += na;
	}
	free(ack);
	return temp;
}

static void reply_empty_pull(struct rep_ctx *rc)
{
	struct wbuf w = { 0 };
	wire_reply_header(&w, WIRE_OK, rc->o.net->r->boot);
	wbuf_u64(&w, 0);
	wbuf_u32(&w, 0);
	rep_reply(rc, &w);
}

static void serve_pull(struct peer *p, struct rep_ctx *rc, int64_t wait_ms)
{
	struct relay *r = p->r;
	struct store_entry ents[BATCH_MAX_MSGS];
	size_t n = 0;
	p->held = NULL;
	p->lingering = 0;
	p->kicks = 0;
	rc->held_for = NULL;
	/* Our own dialer session carries our queue: do not send it twice. */
	size_t allow = rate_allow(p, BATCH_MAX_MSGS);
	if (p->dstate != 2 && allow > 0)
		store_queue_fetch(r->store, p->id, p->out_cursor, allow, BATCH_MAX_BYTES, ents, &n);
	rate_spend(p, n);
	if (n == 0) {
		if (wait_ms > 0) {
			p->held = rc;
			rc->held_for = p;
			rc->hold_until = util_mono_ms() + (wait_ms < PULL_WAIT_MS ? wait_ms : PULL_WAIT_MS);
			return;
		}
		reply_empty_pull(rc);
		return;
	}
	struct out_batch *ob = &p->ob;
	free(ob->seqs);
	free(ob->ids);
	ob->seqs = malloc(n * sizeof(*ob->seqs));
	ob->ids = malloc(n * IL_SHA256_LEN);
	IL_ASSERT(ob->seqs && ob->ids);
	ob->token = ++r->net->next_token;
	ob->n = n;
	struct wbuf w = { 0 };
	wire_reply_header(&w, WIRE_OK, r->boot);
	wbuf_u64(&w, ob->token);
	wbuf_u32(&w, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		ob->seqs[i] = ents[i].seq;
		memcpy(ob->ids[i], ents[i].id, IL_SHA256_LEN);
		wbuf_u32(&w, (uint32_t)ents[i].blob_len);
		wbuf_put(&w, ents[i].blob, ents[i].blob_len);
		p->out_cursor = ents[i].seq;
	}
	store_entries_free(ents, n);
	rep_reply(rc, &w);
}

static void handle_pull(struct peer *p, struct rep_ctx *rc, struct rbuf *body)
{
	uint64_t token = rbuf_u64(body);
	uint32_t count = rbuf_u32(body);
	const uint8_t *res = rbuf_take(body, count);
	(void)rbuf_u32(body); /* max wanted: we send at most BATCH_MAX_MSGS */
	uint32_t wait_ms = rbuf_u32(body);
	if (body->err) {
		reply_status(rc, WIRE_BADREQ);
		return;
	}
	if (token && token == p->ob.token && count == p->ob.n)
		apply_results(p, (const uint8_t(*)[IL_SHA256_LEN])p->ob.ids, p->ob.seqs, p->ob.n, res);
	/* One batch is outstanding at a time: whatever it left unacknowledged
	 * goes again, from the start of the queue. */
	p->ob.token = 0;
	p->out_cursor = 0;
	if (p->held && p->held != rc) {
		struct rep_ctx *old = p->held;
		p->held = NULL;
		old->held_for = NULL;
		reply_empty_pull(old);
	}
	serve_pull(p, rc, wait_ms);
}

void session_listener_request(struct rep_ctx *rc, nng_msg *msg)
{
	struct relay *r = rc->o.net->r;
	struct wire_req q;
	int e = wire_req_decode(nng_msg_body(msg), nng_msg_len(msg), &q);
	if (e < 0) {
		log_warn("peer", "bad_request", "err=%s", log_q(il_strerror(e)));
		nng_msg_free(msg);
		reply_status(rc, e == IL_EVERSION ? WIRE_VERSION : WIRE_BADREQ);
		return;
	}
	struct peer *p = authenticate(rc, &q);
	if (!p) {
		nng_msg_free(msg);
		return;
	}
	listener_seen(p, rc->pipe, q.type == WIRE_HELLO);
	struct rbuf body = { .p = q.body, .len = q.body_len };
	switch (q.type) {
	case WIRE_HELLO:
		nng_msg_free(msg);
		reply_status(rc, WIRE_OK);
		return;
	case WIRE_PULL:
		handle_pull(p, rc, &body);
		nng_msg_free(msg);
		return;
	case WIRE_PUSH: {
		struct rx_batch *b = batch_from(r, p->id, &body, msg);
		if (!b) {
			nng_msg_free(msg);
			reply_status(rc, WIRE_BADREQ);
			return;
		}
		p->received += b->n;
		rx_batch_start(b, push_done, rc);
		return;
	}
	}
	nng_msg_free(msg);
	reply_status(rc, WIRE_BADREQ);
}

void session_release_held(struct peer *p)
{
	if (p->held) {
		struct rep_ctx *old = p->held;
		p->held = NULL;
		old->held_for = NULL;
		reply_empty_pull(old);
	}
}

void session_rep_pipe_removed(struct relay *r, uint32_t pipe)
{
	for (size_t i = 0; i < r->n_peers; i++) {
		struct peer *p = r->peers[i];
		if (p->in_pipe != pipe)
			continue;
		p->in_pipe = 0;
		log_info("peer", "session_down", "peer=%s role=listener", p->id);
		if (p->held) {
			struct rep_ctx *old = p->held;
			p->held = NULL;
			old->held_for = NULL;
			reply_empty_pull(old);
		}
		if (p->yielded) {
			p->yielded = 0;
			if (p->conf->url.s)
				peer_dial_start(p);
		}
		peer_kick(p);
	}
}

/* ---------- dialer role ---------- */

void session_req_done(struct aio_owner *o, int result);
static void push_pump(struct peer *p);
static void pull_send(struct peer *p);
static void pull_durable(void *arg, int err);

static int slot_send(struct req_slot *s, uint8_t type, const uint8_t *body, size_t len,
		     int timeout_ms)
{
	struct peer *p = s->p;
	struct relay *r = p->r;
	uint8_t *frame = NULL;
	size_t flen = 0;
	nng_msg *m = NULL;
	int e = wire_req_encode(type, r->cfg->id, p->id, (uint64_t)util_now_ms(),
				type == WIRE_HELLO ? zero_boot : p->remote_boot, body, len,
				r->sign_key, &frame, &flen);
	if (e < 0)
		return e;
	if ((e = nng_msg_alloc(&m, 0)) || (e = nng_msg_append(m, frame, flen))) {
		free(frame);
		if (m)
			nng_msg_free(m);
		return il_from_nng(e);
	}
	free(frame);
	s->busy = 1;
	nng_aio_set_msg(s->o.aio, m);
	nng_aio_set_timeout(s->o.aio, timeout_ms);
	nng_ctx_send(s->ctx, s->o.aio);
	return 0;
}

static void send_hello(struct peer *p)
{
	p->dstate = 1;
	p->retry_hello_at = 0;
	if (p->hello.busy)
		return;
	if (slot_send(&p->hello, WIRE_HELLO, NULL, 0, REQ_TIMEOUT_MS) < 0)
		p->retry_hello_at = util_mono_ms() + 1000;
}

void session_dialer_up(struct peer *p, uint32_t pipe)
{
	if (!p->dials)
		return;
	p->dpipe = pipe;
	log_debug("peer", "connected", "peer=%s pipe=%u", p->id, pipe);
	send_hello(p);
}

static void slot_reset(struct req_slot *s)
{
	s->busy = 0;
	s->n = 0;
	free(s->seqs);
	free(s->ids);
	s->seqs = NULL;
	s->ids = NULL;
}

void session_dialer_down(struct peer *p, uint32_t pipe)
{
	if (!p->dials || pipe != p->dpipe)
		return;
	if (p->dstate == 2)
		log_info("peer", "session_down", "peer=%s role=dialer", p->id);
	p->dstate = 0;
	p->dpipe = 0;
	p->push_cursor = 0;
	peer_kick(p);   /* a long-poll we held while our dialer carried the queue */
	/* Requests on the dead pipe are abandoned; their aios come back cancelled. */
	nng_aio_cancel(p->hello.o.aio);
	nng_aio_cancel(p->pull.o.aio);
	for (int i = 0; i < PUSH_WINDOW; i++)
		nng_aio_cancel(p->push[i].o.aio);
}

static void dialer_failed(struct req_slot *s, int result)
{
	struct peer *p = s->p;
	if (result != NNG_ECANCELED && result != NNG_ECLOSED)
		peer_set_error(p, "%s request: %s",
			       s->kind == SLOT_HELLO ? "hello" : s->kind == SLOT_PUSH ? "push" : "pull",
			       nng_strerror(result));
	if (s->kind == SLOT_PUSH)
		p->push_cursor = 0;
	slot_reset(s);
	if (s->kind == SLOT_HELLO && p->dstate == 1 && p->dpipe)
		p->retry_hello_at = util_mono_ms() + 2000;
	/* A timed-out request on a live session: go on (and resend). */
	if (p->dstate == 2 && result == NNG_ETIMEDOUT) {
		if (s->kind == SLOT_PULL)
			pull_send(p);
		else
			push_pump(p);
	}
}

static void on_hello_reply(struct req_slot *s, uint8_t status, const uint8_t boot[WIRE_BOOT_LEN])
{
	struct peer *p = s->p;
	slot_reset(s);
	if (status != WIRE_OK) {
		peer_set_error(p, "hello refused: status %u", status);
		log_warn("peer", "hello_refused", "peer=%s status=%u", p->id, status);
		p->retry_hello_at = util_mono_ms() + 10000;
		return;
	}
	memcpy(p->remote_boot, boot, WIRE_BOOT_LEN);
	/* The peer dials us too and its session is up: the lower id's session
	 * carries both directions, so ours gives way (see listener_seen). */
	if (p->in_pipe && strcmp(p->r->cfg->id, p->id) > 0) {
		log_info("peer", "dial_yield", "peer=%s", p->id);
		peer_dial_stop(p);
		p->yielded = 1;
		peer_kick(p);
		return;
	}
	p->dstate = 2;
	p->last_seen_ms = util_now_ms();
	p->push_cursor = 0;
	mark_connected(p, "dialer");
	push_pump(p);
	pull_send(p);
}

static void push_pump(struct peer *p)
{
	struct relay *r = p->r;
	if (p->dstate != 2 || util_mono_ms() / 1000 < p->push_blocked_until)
		return;
	for (int i = 0; i < PUSH_WINDOW; i++) {
		struct req_slot *s = &p->push[i];
		if (s->busy)
			continue;
		struct store_entry ents[BATCH_MAX_MSGS];
		size_t n = 0;
		size_t allow = rate_allow(p, BATCH_MAX_MSGS);
		if (allow == 0 || store_queue_fetch(r->store, p->id, p->push_cursor, allow,
						    BATCH_MAX_BYTES, ents, &n) < 0 || n == 0)
			return;
		rate_spend(p, n);
		struct wbuf w = { 0 };
		s->seqs = malloc(n * sizeof(*s->seqs));
		s->ids = malloc(n * IL_SHA256_LEN);
		IL_ASSERT(s->seqs && s->ids);
		s->n = n;
		wbuf_u32(&w, (uint32_t)n);
		for (size_t k = 0; k < n; k++) {
			s->seqs[k] = ents[k].seq;
			memcpy(s->ids[k], ents[k].id, IL_SHA256_LEN);
			wbuf_u32(&w, (uint32_t)ents[k].blob_len);
			wbuf_put(&w, ents[k].blob, ents[k].blob_len);
		}
		store_entries_free(ents, n);
		int64_t last = s->seqs[n - 1];
		int e = w.err ? w.err : slot_send(s, WIRE_PUSH, w.p, w.len, REQ_TIMEOUT_MS);
		wbuf_free(&w);
		if (e < 0) {
			slot_reset(s);
			return;
		}
		p->push_cursor = last;
	}
}

static void on_push_reply(struct req_slot *s, uint8_t status, struct rbuf *body)
{
	struct peer *p = s->p;
	p->last_seen_ms = util_now_ms();
	if (status == WIRE_OK) {
		uint32_t count = rbuf_u32(body);
		const uint8_t *res = rbuf_take(body, count);
		if (!body->err && count == s->n) {
			if (apply_results(p, (const uint8_t(*)[IL_SHA256_LEN])s->ids, s->seqs, s->n, res) > 0) {
				p->push_cursor = 0;
				p->push_blocked_until = (int)(util_mono_ms() / 1000 + 1);
			}
		} else {
			p->push_cursor = 0;
		}
	} else if (status == WIRE_REHELLO) {
		p->push_cursor = 0;
		slot_reset(s);
		send_hello(p);
		return;
	} else {
		peer_set_error(p, "push refused: status %u", status);
		p->push_cursor = 0;
		p->push_blocked_until = (int)(util_mono_ms() / 1000 + 1);
	}
	slot_reset(s);
	push_pump(p);
}

static void pull_send(struct peer *p)
{
	struct req_slot *s = &p->pull;
	/* Stopping: pull nothing more. The last batch's results stay unsent;
	 * the peer sends those envelopes again after our restart and we drop
	 * them as duplicates. Pulling on instead kept a stopping relay busy
	 * for as long as the peer had a backlog. */
	if (p->dstate != 2 || s->busy || p->r->stopping)
		return;
	struct wbuf w = { 0 };
	wbuf_u64(&w, p->pull_token);
	wbuf_u32(&w, (uint32_t)p->pull_n);
	wbuf_put(&w, p->pull_results, p->pull_n);
	wbuf_u32(&w, BATCH_MAX_MSGS);
	wbuf_u32(&w, PULL_WAIT_MS);
	int e = w.err ? w.err : slot_send(s, WIRE_PULL, w.p, w.len, PULL_WAIT_MS + REQ_TIMEOUT_MS);
	wbuf_free(&w);
	if (e < 0)
		p->retry_hello_at = util_mono_ms() + 1000;
}

/* A pulled batch under way, tied to the dialer generation that pulled it:
 * if the dialer is stopped and restarted meanwhile, the old batch must not
 * touch the new session's pull slot. */
struct pull_ctx {
	struct req_slot *s;
	unsigned gen;
};

static void pull_done(struct rx_batch *b, void *arg)
{
	struct pull_ctx *pc = arg;
	struct req_slot *s = pc->s;
	struct peer *p = s->p;
	size_t temp = 0;
	if (pc->gen != s->o.gen) {
		nng_msg_free(b->frame);
		rx_batch_free(b);
		free(pc);
		return;
	}
	free(p->pull_results);
	p->pull_results = malloc(b->n ? b->n : 1);
	IL_ASSERT(p->pull_results);
	for (size_t i = 0; i < b->n; i++) {
		p->pull_results[i] = (uint8_t)b->items[i].result;
		temp += b->items[i].result == RES_TEMPFAIL;
	}
	p->pull_n = b->n;
	nng_msg_free(b->frame);
	struct relay *r = b->r;
	rx_batch_free(b);
	/* Results go out with the next PULL, so it waits for the disk. While it
	 * waits the slot stays busy; our store refusing: the tick pulls later. */
	p->pull_temp = temp;
	durable_after(r, pull_durable, pc);
}

static void pull_durable(void *arg, int err)
{
	struct pull_ctx *pc = arg;
	struct req_slot *s = pc->s;
	struct peer *p = s->p;
	int stale = pc->gen != s->o.gen;
	free(pc);
	if (stale)
		return;
	slot_reset(s);
	if (err < 0) {
		/* Nothing may be reported as stored: drop the results, the listener
		 * sends the batch again and we find what we have by id. */
		p->pull_token = 0;
		p->pull_n = 0;
		return;
	}
	if (p->pull_temp == 0)
		pull_send(p);
}

static void on_pull_reply(struct req_slot *s, uint8_t status, struct rbuf *body, nng_msg *m)
{
	struct peer *p = s->p;
	p->last_seen_ms = util_now_ms();
	if (status == WIRE_REHELLO) {
		nng_msg_free(m);
		slot_reset(s);
		send_hello(p);
		return;
	}
	if (status != WIRE_OK) {
		nng_msg_free(m);
		slot_reset(s);
		peer_set_error(p, "pull refused: status %u", status);
		p->retry_hello_at = util_mono_ms() + 2000;
		return;
	}
	uint64_t token = rbuf_u64(body);
	struct rx_batch *b = body->err ? NULL : batch_from(p->r, p->id, body, m);
	if (!b) {
		nng_msg_free(m);
		slot_reset(s);
		pull_send(p);
		return;
	}
	p->pull_token = token;
	p->received += b->n;
	s->busy = 3;
	struct pull_ctx *pc = calloc(1, sizeof(*pc));
	IL_ASSERT(pc);
	pc->s = s;
	pc->gen = s->o.gen;
	rx_batch_start(b, pull_done, pc);
}

void session_req_done(struct aio_owner *o, int result)
{
	struct req_slot *s = (struct req_slot *)o;
	struct peer *p = s->p;
	if (!s->o.aio || !p->dials)
		return;                 /* the dialer was stopped meanwhile */
	if (s->busy == 1) {
		if (result) {
			nng_msg *m = nng_aio_get_msg(o->aio);
			nng_aio_set_msg(o->aio, NULL);
			if (m)
				nng_msg_free(m);
			dialer_failed(s, result);
			return;
		}
		s->busy = 2;
		nng_ctx_recv(s->ctx, o->aio);
		return;
	}
	if (result) {
		dialer_failed(s, result);
		return;
	}
	nng_msg *m = nng_aio_get_msg(o->aio);
	nng_aio_set_msg(o->aio, NULL);
	uint8_t status, boot[WIRE_BOOT_LEN];
	struct rbuf body;
	if (wire_reply_decode(nng_msg_body(m), nng_msg_len(m), &status, boot, &body) < 0) {
		nng_msg_free(m);
		peer_set_error(p, "undecodable reply");
		dialer_failed(s, NNG_EPROTO);
		return;
	}
	switch (s->kind) {
	case SLOT_HELLO:
		on_hello_reply(s, status, boot);
		break;
	case SLOT_PUSH:
		on_push_reply(s, status, &body);
		break;
	case SLOT_PULL:
		on_pull_reply(s, status, &body, m);
		return;         /* the batch owns m now */
	}
	nng_msg_free(m);
}

static void serve_held(struct peer *p)
{
	int64_t left = p->held->hold_until - util_mono_ms();
	serve_pull(p, p->held, left > 0 ? left : 0);
}

static void on_linger(uv_timer_t *t)
{
	struct relay *r = t->data;
	for (size_t i = 0; i < r->n_peers; i++)
		if (r->peers[i]->held && r->peers[i]->lingering)
			serve_held(r->peers[i]);
}

/*
 * New messages for p. A PULL it holds is answered PULL_LINGER_MS after the
 * first of them, so that the ones right behind it ride the same batch: at a
 * steady few hundred posts a second, answering each at once made a batch of
 * one, and every batch costs a request, its signature and nonce (the
 * receiver's replay cache holds one per request for the whole time
 * window), an fdatasync and an acknowledgement at both ends. Under load the
 * queue is never empty when a PULL comes, so nothing lingers.
 */
void peer_kick(struct peer *p)
{
	if (p->held) {
		struct net *n = p->r->net;
		if (++p->kicks >= PULL_LINGER_ENOUGH || !n)
			serve_held(p);
		else if (!p->lingering) {
			p->lingering = 1;
			if (!uv_is_active((uv_handle_t *)&n->linger))
				uv_timer_start(&n->linger, on_linger, PULL_LINGER_MS, 0);
		}
	}
	push_pump(p);
}

#define UNREACHABLE_AFTER_MS 10000

/* nng retries refused connections and failed TLS handshakes silently: say
 * so ourselves when a dialled peer has had no session for a while. */
static void check_unreachable(struct peer *p, int64_t now)
{
	if (!p->dials || p->dstate == 2 || p->in_pipe) {
		p->down_since = 0;
		p->unreachable_logged = 0;
		return;
	}
	if (!p->down_since)
		p->down_since = now;
	if (p->unreachable_logged || now - p->down_since < UNREACHABLE_AFTER_MS)
		return;
	p->unreachable_logged = 1;
	if (!p->last_error[0])
		peer_set_error(p, "no session for %lld s: connection or TLS handshake failing",
			       (long long)((now - p->down_since) / 1000));
	log_warn("peer", "unreachable", "peer=%s url=%s down_s=%lld err=%s", p->id,
		 p->conf->url.s, (long long)((now - p->down_since) / 1000), log_q(p->last_error));
}

void session_tick(struct relay *r)
{
	int64_t now = util_mono_ms();
	for (size_t i = 0; i < r->n_peers; i++) {
		struct peer *p = r->peers[i];
		check_unreachable(p, now);
		/* A rate-limited peer's bucket has refilled: serve its long-poll. */
		if (p->held && p->conf->max_rate > 0 && p->held->hold_until > now)
			serve_pull(p, p->held, p->held->hold_until - now);
		if (p->held && p->held->hold_until <= now) {
			struct rep_ctx *old = p->held;
			p->held = NULL;
			old->held_for = NULL;
			reply_empty_pull(old);
		}
		if (p->dials && p->dstate == 1 && p->retry_hello_at && p->retry_hello_at <= now)
			send_hello(p);
		if (p->dials && p->dstate == 2) {
			push_pump(p);
			pull_send(p);
		}
	}
}
