/*
 * net.c — nng sockets and TLS for peering, and the hand-off of nng's
 * callbacks to the loop.
 *
 * nng runs aio completions and pipe notifications on its own threads. Those
 * only allocate an event, append it to a mutex-protected list and call
 * uv_async_send (which coalesces wake-ups); net_drain() on the loop takes the
 * whole list and runs the handlers. Nothing else crosses threads.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "il/error.h"
#include "il/log.h"
#include "il/util.h"
#include "net.h"

void net_post(struct net *n, struct ev *e)
{
	pthread_mutex_lock(&n->mu);
	if (n->abandoned) {
		pthread_mutex_unlock(&n->mu);
		free(e);
		return;
	}
	if (n->tail)
		n->tail->next = e;
	else
		n->head = e;
	n->tail = e;
	pthread_mutex_unlock(&n->mu);
	uv_async_send(&n->async);
}

void net_aio_cb(void *arg)
{
	struct aio_owner *o = arg;
	struct ev *e = calloc(1, sizeof(*e));
	IL_ASSERT(e);   /* losing a completion would wedge a session forever */
	e->kind = EV_AIO;
	e->owner = o;
	e->gen = o->gen;
	e->result = nng_aio_result(o->aio);
	net_post(o->net, e);
}

/*
 * A dialer's aios and pipe notifications get these as their callback
 * arguments rather than the slot or peer itself: when a dialer is stopped
 * its socket is closed on another thread (see peer_dial_stop), and events
 * that socket still produces must name the generation they belong to, so
 * the loop can drop them instead of applying them to a newer socket.
 */
struct aio_ref {
	struct net *net;
	struct aio_owner *o;
	unsigned gen;
	nng_aio *aio;
};

struct dial_tag {
	struct net *net;
	struct peer *p;
	unsigned gen;
};

static void ref_cb(void *arg)
{
	struct aio_ref *ref = arg;
	struct ev *e = calloc(1, sizeof(*e));
	IL_ASSERT(e);
	e->kind = EV_AIO;
	e->owner = ref->o;
	e->gen = ref->gen;
	e->result = nng_aio_result(ref->aio);
	net_post(ref->net, e);
}

/* Pipe events of a dialer's socket. */
static void pipe_cb(nng_pipe pipe, nng_pipe_ev what, void *arg)
{
	struct dial_tag *tag = arg;
	struct ev *e = calloc(1, sizeof(*e));
	IL_ASSERT(e);
	e->kind = what == NNG_PIPE_EV_ADD_POST ? EV_PIPE_ADD : EV_PIPE_REM;
	e->peer = tag->p;
	e->dial_gen = tag->gen;
	e->pipe = nng_pipe_id(pipe);
	net_post(tag->net, e);
}

static struct net *listener_net;        /* one listener per process */

static void rep_pipe_cb(nng_pipe pipe, nng_pipe_ev what, void *arg)
{
	(void)arg;
	if (what != NNG_PIPE_EV_REM_POST || !listener_net)
		return;
	struct ev *e = calloc(1, sizeof(*e));
	IL_ASSERT(e);
	e->kind = EV_PIPE_REM;
	e->pipe = nng_pipe_id(pipe);
	net_post(listener_net, e);
}

static void net_drain(uv_async_t *h)
{
	struct net *n = h->data;
	pthread_mutex_lock(&n->mu);
	struct ev *e = n->head;
	n->head = n->tail = NULL;
	pthread_mutex_unlock(&n->mu);
	while (e) {
		struct ev *next = e->next;
		switch (e->kind) {
		case EV_AIO:
			if (e->gen == e->owner->gen && e->owner->aio)
				e->owner->on_done(e->owner, e->result);
			break;
		case EV_PIPE_ADD:
			if (e->peer && e->dial_gen == e->peer->dial_gen)
				session_dialer_up(e->peer, e->pipe);
			break;
		case EV_PIPE_REM:
			if (e->peer && e->dial_gen != e->peer->dial_gen)
				break;
			if (e->peer)
				session_dialer_down(e->peer, e->pipe);
			else
				session_rep_pipe_removed(n->r, e->pipe);
			break;
		}
		free(e);
		e = next;
	}
}

static int read_pem(const char *path, char **out)
{
	uint8_t *buf;
	size_t len;
	int e = util_read_file(path, 1 << 20, &buf, &len);
	if (e < 0)
		return e;
	*out = (char *)buf;
	return 0;
}

/* Our certificate and key, and the pinned certificates as trust anchors. */
static int tls_config(struct relay *r, nng_tls_mode mode, const char *server_name,
		      const char *const *ca_paths, size_t n_ca, nng_tls_config **out, char *err,
		      size_t errlen)
{
	nng_tls_config *tc = NULL;
	char *cert = NULL, *key = NULL, *ca = NULL;
	size_t ca_len = 0;
	int e = nng_tls_config_alloc(&tc, mode);
	if (e)
		goto nng_fail;
	if ((e = read_pem(r->cfg->tls_cert.s, &cert)) < 0 || (e = read_pem(r->cfg->tls_key.s, &key)) < 0)
		goto fail;
	for (size_t i = 0; i < n_ca; i++) {
		char *one;
		if ((e = read_pem(ca_paths[i], &one)) < 0)
			goto fail;
		size_t l = strlen(one);
		char *nca = realloc(ca, ca_len + l + 2);
		if (!nca) {
			free(one);
			e = -ENOMEM;
			goto fail;
		}
		ca = nca;
		memcpy(ca + ca_len, one, l);
		ca_len += l;
		ca[ca_len++] = '\n';
		ca[ca_len] = 0;
		free(one);
	}
	if ((e = nng_tls_config_version(tc, NNG_TLS_1_2, NNG_TLS_1_2)))
		goto nng_fail;
	if ((e = nng_tls_config_own_cert(tc, cert, key, NULL)))
		goto nng_fail;
	if (ca && (e = nng_tls_config_ca_chain(tc, ca, NULL)))
		goto nng_fail;
	if (server_name && (e = nng_tls_config_server_name(tc, server_name)))
		goto nng_fail;
	if ((e = nng_tls_config_auth_mode(tc, NNG_TLS_AUTH_MODE_REQUIRED)))
		goto nng_fail;
	free(cert);
	free(key);
	free(ca);
	*out = tc;
	return 0;
nng_fail:
	snprintf(err, errlen, "tls: %s", nng_strerror(e));
	e = il_from_nng(e);
	goto out;
fail:
	snprintf(err, errlen, "tls: reading keys: %s", il_strerror(e));
out:
	if (tc)
		nng_tls_config_free(tc);
	free(cert);
	free(key);
	free(ca);
	return e;
}

/* A stopped aio may still hold a message it was sending: ours to free.
 * (Every handler takes received messages out of the aio, so what is left
 * here was never handed over.) */
static void aio_drop_msg(nng_aio *aio)
{
	nng_msg *m = nng_aio_get_msg(aio);
	if (m) {
		nng_aio_set_msg(aio, NULL);
		nng_msg_free(m);
	}
}

static int slot_init(struct net *n, struct req_slot *s, struct peer *p, enum req_kind kind,
		     aio_handler h)
{
	s->o.net = n;
	s->o.on_done = h;
	s->p = p;
	s->kind = kind;
	struct aio_ref *ref = calloc(1, sizeof(*ref));
	if (!ref)
		return -ENOMEM;
	ref->net = n;
	ref->o = &s->o;
	ref->gen = s->o.gen;
	int e = nng_aio_alloc(&ref->aio, ref_cb, ref);
	if (e) {
		free(ref);
		return il_from_nng(e);
	}
	s->ref = ref;
	s->o.aio = ref->aio;
	e = nng_ctx_open(&s->ctx, p->req);
	return e ? il_from_nng(e) : 0;
}

void session_req_done(struct aio_owner *o, int result);

int peer_dial_start(struct peer *p)
{
	struct relay *r = p->r;
	char err[256];
	const char *ca[1] = { p->conf->tls_cert.s };
	if (!p->conf->url.s)
		return -EINVAL;
	struct dial_tag *tag = calloc(1, sizeof(*tag));
	if (!tag)
		return -ENOMEM;
	int e = nng_req0_open(&p->req);
	if (e) {
		free(tag);
		return il_from_nng(e);
	}
	tag->net = r->net;
	tag->p = p;
	tag->gen = ++p->dial_gen;
	p->tag = tag;
	p->dials = 1;   /* from here on, peer_dial_stop() releases what we made */
	nng_socket_set_ms(p->req, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(p->req, NNG_OPT_RECVMAXSZ, RECV_MAX_BYTES);
	nng_pipe_notify(p->req, NNG_PIPE_EV_ADD_POST, pipe_cb, tag);
	nng_pipe_notify(p->req, NNG_PIPE_EV_REM_POST, pipe_cb, tag);
	if ((e = tls_config(r, NNG_TLS_MODE_CLIENT, p->id, ca, 1, &p->tls, err, sizeof(err))) < 0) {
		log_err("peer", "tls_setup_failed", "peer=%s err=%s", p->id, log_q(err));
		goto fail;
	}
	/*
	 * nng backs off exponentially between these; the random start spreads
	 * the reconnects of relays that lost a peer at the same moment. The
	 * ceiling is what a restarted peer waits for us at worst: nng 1.5.2
	 * retries a refused connection in a burst (six tries in 14 ms seen)
	 * and doubles its wait after each, so a peer that took 50 ms to start
	 * listening was dialled again only 11 s later under a 20 s ceiling.
	 * A connection attempt every few seconds to a peer that is down costs
	 * nothing. Set on the socket too, which the dialer inherits.
	 */
	uint16_t jitter;
	util_random(&jitter, sizeof(jitter));
	nng_duration rmin = 200 + jitter % 300, rmax = 2000 + jitter % 1000;
	nng_socket_set_ms(p->req, NNG_OPT_RECONNMINT, rmin);
	nng_socket_set_ms(p->req, NNG_OPT_RECONNMAXT, rmax);
	if ((e = nng_dialer_create(&p->dialer, p->req, p->conf->url.s)) ||
	    (e = nng_dialer_set_ptr(p->dialer, NNG_OPT_TLS_CONFIG, p->tls))) {
		e = il_from_nng(e);
		goto fail;
	}
	nng_dialer_set_ms(p->dialer, NNG_OPT_RECONNMINT, rmin);
	nng_dialer_set_ms(p->dialer, NNG_OPT_RECONNMAXT, rmax);
	struct net *n = r->net;
	if ((e = slot_init(n, &p->hello, p, SLOT_HELLO, session_req_done)) < 0 ||
	    (e = slot_init(n, &p->pull, p, SLOT_PULL, session_req_done)) < 0)
		goto fail;
	for (int i = 0; i < PUSH_WINDOW; i++)
		if ((e = slot_init(n, &p->push[i], p, SLOT_PUSH, session_req_done)) < 0)
			goto fail;
	if ((e = nng_dialer_start(p->dialer, NNG_FLAG_NONBLOCK))) {
		e = il_from_nng(e);
		goto fail;
	}
	log_info("peer", "dialing", "peer=%s url=%s", p->id, p->conf->url.s);
	return 0;
fail:
	log_err("peer", "dial_setup_failed", "peer=%s err=%s", p->id, log_q(il_strerror(e)));
	peer_dial_stop(p);
	return e;
}

/* What a stopped dialer leaves to close: its socket, aios and TLS config. */
struct closer {
	int grace;
	nng_socket sock;
	nng_tls_config *tls;
	struct dial_tag *tag;
	struct aio_ref *refs[PUSH_WINDOW + 2];
	size_t n_refs;
};

/*
 * nng_close() can block for a long time, even for good (seen with Debian's
 * nng 1.5.2 when a multi-megabyte reply is arriving), so it never runs on
 * the loop: a detached thread closes the socket and then frees its aios.
 * Events the old socket still produces carry old generations and are
 * dropped by the loop.
 */
/*
 * Closing a dialer while its connection is being negotiated at the peer's
 * listener leaves that listener, in nng 1.5.2, unable to accept anything
 * again (nng issue #1518, "Disconnect during negotiation breaks listener").
 * The closer waits this long first, so a handshake under way completes and
 * what gets closed is an established pipe (nothing is sent on it: its
 * request slots were already detached).
 */
#define CLOSE_GRACE_MS 2000

static void *closer_main(void *arg)
{
	struct closer *c = arg;
	if (c->grace) {
		struct timespec ts = { CLOSE_GRACE_MS / 1000, (CLOSE_GRACE_MS % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	nng_close(c->sock);
	for (size_t i = 0; i < c->n_refs; i++) {
		nng_aio_stop(c->refs[i]->aio);
		aio_drop_msg(c->refs[i]->aio);
		nng_aio_free(c->refs[i]->aio);
		free(c->refs[i]);
	}
	if (c->tls)
		nng_tls_config_free(c->tls);
	free(c->tag);
	free(c);
	return NULL;
}

static void slot_detach(struct req_slot *s, struct closer *c)
{
	if (s->ref)
		c->refs[c->n_refs++] = s->ref;
	s->ref = NULL;
	s->o.aio = NULL;
	s->o.gen++;
	s->busy = 0;
	s->n = 0;
	free(s->seqs);
	free(s->ids);
	s->seqs = NULL;
	s->ids = NULL;
}

void peer_dial_stop(struct peer *p)
{
	if (!p->dials)
		return;
	struct closer *c = calloc(1, sizeof(*c));
	IL_ASSERT(c);
	c->grace = 1;
	c->sock = p->req;
	c->tls = p->tls;
	c->tag = p->tag;
	slot_detach(&p->hello, c);
	slot_detach(&p->pull, c);
	for (int i = 0; i < PUSH_WINDOW; i++)
		slot_detach(&p->push[i], c);
	p->tls = NULL;
	p->tag = NULL;
	p->dial_gen++;
	p->dials = 0;
	p->dstate = 0;
	p->dpipe = 0;
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, closer_main, c) != 0) {
		c->grace = 0;           /* no thread to be had: close it here, now */
		closer_main(c);
	}
	pthread_attr_destroy(&attr);
}

/* Request contexts of the listener: a held long-poll occupies one per peer,
 * the rest serve pushes. Each is allocated on its own, since its aio points
 * at it, so a reload can add more without moving any. */
static int rctx_add(struct net *n, size_t count)
{
	struct rep_ctx **nr = realloc(n->rctx, (n->n_rctx + count) * sizeof(*nr));
	if (!nr)
		return -ENOMEM;
	n->rctx = nr;
	for (size_t i = 0; i < count; i++) {
		struct rep_ctx *rc = calloc(1, sizeof(*rc));
		int e;
		if (!rc)
			return -ENOMEM;
		rc->o.net = n;
		if ((e = nng_aio_alloc(&rc->o.aio, net_aio_cb, &rc->o)) ||
		    (e = nng_ctx_open(&rc->ctx, n->rep))) {
			if (rc->o.aio)
				nng_aio_free(rc->o.aio);
			free(rc);
			return il_from_nng(e);
		}
		n->rctx[n->n_rctx++] = rc;
		rep_recv(rc);
	}
	return 0;
}

static int listener_tls(struct relay *r, const struct il_config *cfg, nng_tls_config **out,
			char *err, size_t errlen)
{
	const char **cas = calloc(cfg->n_peers + 1, sizeof(*cas));
	if (!cas)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_peers; i++)
		cas[i] = cfg->peers[i].tls_cert.s;
	int e = tls_config(r, NNG_TLS_MODE_SERVER, NULL, cas, cfg->n_peers, out, err, errlen);
	free(cas);
	return e;
}

static int listener_start(struct relay *r, char *err, size_t errlen)
{
	struct net *n = r->net;
	int e;
	if ((e = nng_rep0_open(&n->rep))) {
		e = il_from_nng(e);
		goto out;
	}
	nng_socket_set_size(n->rep, NNG_OPT_RECVMAXSZ, RECV_MAX_BYTES);
	listener_net = n;
	nng_pipe_notify(n->rep, NNG_PIPE_EV_REM_POST, rep_pipe_cb, NULL);
	if ((e = listener_tls(r, r->cfg, &n->ltls, err, errlen)) < 0)
		goto out;
	if ((e = nng_listener_create(&n->listener, n->rep, r->cfg->listen.s)) ||
	    (e = nng_listener_set_ptr(n->listener, NNG_OPT_TLS_CONFIG, n->ltls)) ||
	    (e = nng_listener_start(n->listener, 0))) {
		snprintf(err, errlen, "listen %s: %s", r->cfg->listen.s, nng_strerror(e));
		e = il_from_nng(e);
		goto out;
	}
	n->listening = 1;
	if ((e = rctx_add(n, 2 * r->cfg->n_peers + 4 * PUSH_WINDOW)) < 0)
		goto out;
	log_info("peer", "listening", "url=%s peers=%zu", r->cfg->listen.s, r->cfg->n_peers);
	e = 0;
out:
	return e;
}

static void peer_free(struct peer *p)
{
	free(p->ob.seqs);
	free(p->ob.ids);
	free(p->pull_results);
	free(p);
}

static struct peer *peer_new(struct relay *r, const struct il_peer_conf *pc)
{
	struct peer *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->r = r;
	p->conf = pc;
	snprintf(p->id, sizeof(p->id), "%s", pc->id);
	return p;
}

int net_start(struct relay *r, char *err, size_t errlen)
{
	struct net *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->r = r;
	r->net = n;
	pthread_mutex_init(&n->mu, NULL);
	uv_async_init(r->loop, &n->async, net_drain);
	n->async.data = n;
	uv_timer_init(r->loop, &n->linger);
	n->linger.data = r;
	r->peers = calloc(r->cfg->n_peers + 1, sizeof(*r->peers));
	if (!r->peers)
		return -ENOMEM;
	for (size_t i = 0; i < r->cfg->n_peers; i++) {
		struct peer *p = peer_new(r, &r->cfg->peers[i]);
		if (!p)
			return -ENOMEM;
		r->peers[r->n_peers++] = p;
	}
	int e = 0;
	if (r->cfg->listen.s && (e = listener_start(r, err, errlen)) < 0)
		return e;
	/* A peer we cannot dial (bad address, dead host) never stops the others. */
	for (size_t i = 0; i < r->n_peers; i++)
		if (r->peers[i]->conf->url.s)
			peer_dial_start(r->peers[i]);
	return 0;
}

static int same_strs(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Does a change of peer settings need a new connection? Keys, lists, TLP
 * and rate apply to the running session. */
static int dial_changed(const struct il_peer_conf *a, const struct il_peer_conf *b)
{
	return !same_strs(a->url.s, b->url.s) || !same_strs(a->tls_cert.s, b->tls_cert.s);
}

int net_reload(struct relay *r, const struct il_config *cfg, char *err, size_t errlen)
{
	struct net *n = r->net;
	nng_tls_config *ltls = NULL;
	int e;
	/* Build everything that can fail before changing anything. */
	if (n->listening && (e = listener_tls(r, cfg, &ltls, err, errlen)) < 0)
		return e;
	struct peer **np = calloc(cfg->n_peers + 1, sizeof(*np));
	struct peer **ret = realloc(n->retired, (n->n_retired + r->n_peers + 1) * sizeof(*ret));
	if (!np || !ret) {
		free(np);
		if (ret)
			n->retired = ret;
		if (ltls)
			nng_tls_config_free(ltls);
		return -ENOMEM;
	}
	n->retired = ret;
	for (size_t i = 0; i < cfg->n_peers; i++) {
		struct peer *p = relay_peer(r, cfg->peers[i].id);
		if (!p && !(p = peer_new(r, &cfg->peers[i]))) {
			for (size_t k = 0; k < i; k++)
				if (!relay_peer(r, np[k]->id))
					peer_free(np[k]);
			free(np);
			if (ltls)
				nng_tls_config_free(ltls);
			return -ENOMEM;
		}
		np[i] = p;
	}
	/* Removed peers: close, drop their queue, keep the struct until stop
	 * (events already queued may still name it). */
	for (size_t i = 0; i < r->n_peers; i++) {
		struct peer *p = r->peers[i];
		if (config_peer(cfg, p->id))
			continue;
		uint64_t dropped = 0;
		peer_dial_stop(p);
		session_release_held(p);
		store_queue_purge(r->store, p->id, NULL, &dropped);
		log_warn("peer", "removed", "peer=%s dropped_queue=%llu", p->id,
			 (unsigned long long)dropped);
		p->in_pipe = 0;
		n->retired[n->n_retired++] = p;
	}
	size_t added = 0;
	for (size_t i = 0; i < cfg->n_peers; i++) {
		struct peer *p = np[i];
		const struct il_peer_conf *pc = &cfg->peers[i];
		int existed = relay_peer(r, p->id) != NULL;
		int redial = existed && p->dials && dial_changed(p->conf, pc);
		if (!pc->url.s)
			p->yielded = 0;
		int want_dial = pc->url.s && !p->yielded;
		if (redial || (p->dials && !want_dial))
			peer_dial_stop(p);
		p->conf = pc;
		if (!existed) {
			added++;
			log_info("peer", "added", "peer=%s", p->id);
		}
		if (want_dial && !p->dials)
			peer_dial_start(p);
	}
	free(r->peers);
	r->peers = np;
	r->n_peers = cfg->n_peers;
	if (ltls) {
		/* New connections are checked against the new set of pinned
		 * certificates; established sessions keep their pipes. */
		if ((e = nng_listener_set_ptr(n->listener, NNG_OPT_TLS_CONFIG, ltls)) != 0) {
			log_err("peer", "listener_tls_update_failed", "err=%s", log_q(nng_strerror(e)));
			nng_tls_config_free(ltls);
		} else {
			nng_tls_config_free(n->ltls);
			n->ltls = ltls;
		}
		if (added)
			rctx_add(n, 2 * added);
	}
	return 0;
}

/* Kept reachable after shutdown (for leak checkers): see net_stop. Volatile:
 * a pointer only ever stored is otherwise dropped by the optimiser, and a
 * relay with no peer and no listener then showed the net as leaked. */
static struct net *volatile net_at_exit;

/*
 * Shutdown. The sockets are not closed here: closing one can block (see
 * closer_main), and the process is about to exit, when the kernel closes
 * every connection anyway and peers see them go. nng's threads may still
 * call back until then; net_post drops what they send, and nothing they
 * can reach is freed.
 */
void net_stop(struct relay *r)
{
	struct net *n = r->net;
	if (!n)
		return;
	pthread_mutex_lock(&n->mu);
	n->abandoned = 1;
	struct ev *e = n->head;
	n->head = n->tail = NULL;
	pthread_mutex_unlock(&n->mu);
	while (e) {
		struct ev *next = e->next;
		free(e);
		e = next;
	}
	n->peers_at_exit = r->peers;
	n->n_peers_at_exit = r->n_peers;
	net_at_exit = n;
	r->peers = NULL;
	r->n_peers = 0;
	r->net = NULL;
	uv_close((uv_handle_t *)&n->async, NULL);
	uv_close((uv_handle_t *)&n->linger, NULL);
}

const char *peer_id(const struct peer *p) { return p->id; }
void peer_count_rejected(struct peer *p, uint64_t n) { p->rejected += n; }
void peer_count_received(struct peer *p, uint64_t n) { p->received += n; }

void peer_get_stats(const struct peer *p, struct peer_stats *s)
{
	s->connected = p->dstate == 2 || p->in_pipe != 0;
	s->connects = p->connects;
	s->sent = p->sent;
	s->received = p->received;
	s->rejected = p->rejected;
	s->last_seen_ms = p->last_seen_ms;
	s->connected_since_ms = s->connected ? p->connected_since_ms : 0;
	snprintf(s->last_error, sizeof(s->last_error), "%s", p->last_error);
}

void peer_set_error(struct peer *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->last_error, sizeof(p->last_error), fmt, ap);
	va_end(ap);
}
