/*
 * metrics.c — the Prometheus text exposition (format 0.0.4) of the relay's
 * counters, peers, lists, delivery latency, certificate lifetimes and store
 * size, and the optional HTTP endpoint serving it (see metrics.h).
 *
 * Every family has its # HELP and # TYPE lines before its samples, and its
 * samples together; counter names end in _total. The HTTP server answers one
 * request per connection and closes (Connection: close), like the status
 * socket: nothing to keep alive between scrapes, and every connection is
 * bounded in size, number and time.
 */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "il/config.h"
#include "il/crypto.h"
#include "il/log.h"
#include "il/util.h"
#include "metrics.h"
#include "status.h"

#define METRICS_MAX_CONNS 16            /* a scraper or two, and an operator with curl */
#define METRICS_REQ_MAX 8192            /* request line + headers; a GET has no body */
#define METRICS_DEADLINE_MS 10000       /* whole connection, so a slow client can't hold one */
#define METRICS_BACKLOG 64

/* Bounds in ms and their le labels. From a local Maildir write (tens of ms)
 * to deliveries held back by retries with backoff (hours). */
static const struct {
	int64_t ms;
	const char *le;
} lat_bounds[RELAY_LATENCY_BUCKETS] = {
	{ 50, "0.05" }, { 100, "0.1" }, { 250, "0.25" }, { 500, "0.5" }, { 1000, "1" },
	{ 2500, "2.5" }, { 5000, "5" }, { 10000, "10" }, { 30000, "30" }, { 60000, "60" },
	{ 300000, "300" }, { 900000, "900" }, { 3600000, "3600" }, { 21600000, "21600" },
};

struct cert_exp {
	char name[IL_ID_MAX + 1];       /* "own" or a peer id */
	int64_t not_after;              /* Unix s */
};

struct mconn {
	uv_tcp_t tcp;
	uv_timer_t deadline;
	uv_write_t w;
	uv_shutdown_t sh;
	struct metrics *m;
	struct mconn *next, **pprev;    /* m->conns, so that stop can close them */
	char *head, *body;              /* the answer, freed with the connection */
	size_t len;
	int closing;                    /* handles still to close */
	int answered;
	char req[METRICS_REQ_MAX];
};

struct metrics {
	struct relay *r;
	struct cert_exp *certs;
	size_t n_certs;
	uv_tcp_t server;
	int has_server;                 /* server initialized: close it at stop */
	int handles;                    /* open: server + connections' handles */
	int stopping;
	int accept_stalled;             /* a connection waits: no memory to take it */
	struct mconn *conns;
	int n_conns;
};

/* ---- exposition ---- */

static void family(struct wbuf *b, const char *name, const char *type, const char *help)
{
	jb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, quoted; backslash, double quote and newline escaped. */
static void label_value(struct wbuf *b, const char *s)
{
	wbuf_u8(b, '"');
	for (; *s; s++) {
		if (*s == '\\' || *s == '"') {
			wbuf_u8(b, '\\');
			wbuf_u8(b, (uint8_t)*s);
		} else if (*s == '\n') {
			wbuf_put(b, "\\n", 2);
		} else {
			wbuf_u8(b, (uint8_t)*s);
		}
	}
	wbuf_u8(b, '"');
}

/* `name{key="val"} VALUE` (no braces when key is NULL); fmt formats VALUE. */
static void sample(struct wbuf *b, const char *name, const char *key, const char *val,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void sample(struct wbuf *b, const char *name, const char *key, const char *val,
		   const char *fmt, ...)
{
	char num[64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(num, sizeof(num), fmt, ap);
	va_end(ap);
	if (key) {
		jb_printf(b, "%s{%s=", name, key);
		label_value(b, val);
		jb_printf(b, "} %s\n", num);
	} else {
		jb_printf(b, "%s %s\n", name, num);
	}
}

struct peer_snap {
	const char *id;
	struct peer_stats s;
	uint64_t queued;
	int64_t oldest_ms;
};

struct list_snap {
	const struct list_rt *l;
	uint64_t pending, failed;
};

static void put_counters(struct wbuf *b, const struct counters *c)
{
	const struct {
		const char *result;
		uint64_t v;
	} res[] = {
		{ "accepted", c->accepted }, { "duplicates", c->duplicates },
		{ "bad_signature", c->bad_signature }, { "unknown_origin", c->unknown_origin },
		{ "auth_failed", c->auth_failed }, { "loops", c->loops },
		{ "too_large", c->too_large }, { "stale", c->stale }, { "held_tlp", c->held_tlp },
		{ "malformed", c->malformed }, { "unknown_list", c->unknown_list },
		{ "hop_limit", c->hop_limit }, { "expired", c->expired },
		{ "not_accepted", c->not_accepted },
	};
	family(b, "interlist_messages_total", "counter",
	       "Messages by what became of them, since start (the status counters).");
	for (size_t i = 0; i < sizeof(res) / sizeof(res[0]); i++)
		sample(b, "interlist_messages_total", "result", res[i].result, "%llu",
		       (unsigned long long)res[i].v);
	family(b, "interlist_replays_total", "counter",
	       "Peer requests refused as replays (nonce already seen), since start.");
	sample(b, "interlist_replays_total", NULL, NULL, "%llu", (unsigned long long)c->replays);
	family(b, "interlist_purged_total", "counter",
	       "Queued messages dropped by an operator's purge, since start.");
	sample(b, "interlist_purged_total", NULL, NULL, "%llu", (unsigned long long)c->purged);
}

/* One family with a sample per peer; expr is evaluated with p set. */
#define PEER_FAMILY(b, name, type, help, fmt, expr)                                   \
	do {                                                                          \
		family(b, name, type, help);                                          \
		for (size_t i_ = 0; i_ < n_ps; i_++) {                                \
			const struct peer_snap *p = &ps[i_];                          \
			sample(b, name, "peer", p->id, fmt, expr);                    \
		}                                                                     \
	} while (0)

static void put_peers(struct wbuf *b, const struct peer_snap *ps, size_t n_ps, int64_t now)
{
	PEER_FAMILY(b, "interlist_peer_connected", "gauge", "1 while a session with the peer is up.",
		    "%d", p->s.connected ? 1 : 0);
	PEER_FAMILY(b, "interlist_peer_queued", "gauge", "Messages queued for the peer.", "%llu",
		    (unsigned long long)p->queued);
	PEER_FAMILY(b, "interlist_peer_oldest_queued_seconds", "gauge",
		    "Age of the oldest message queued for the peer (0: none queued).", "%lld",
		    (long long)(p->oldest_ms && now > p->oldest_ms ? (now - p->oldest_ms) / 1000 : 0));
	PEER_FAMILY(b, "interlist_peer_last_seen_timestamp_seconds", "gauge",
		    "Unix time the peer last answered or asked (0: never).", "%lld",
		    (long long)(p->s.last_seen_ms / 1000));
	PEER_FAMILY(b, "interlist_peer_sent_total", "counter", "Messages the peer took from us.",
		    "%llu", (unsigned long long)p->s.sent);
	PEER_FAMILY(b, "interlist_peer_received_total", "counter",
		    "Messages received from the peer.", "%llu", (unsigned long long)p->s.received);
	PEER_FAMILY(b, "interlist_peer_rejected_total", "counter",
		    "Messages from the peer refused (not a duplicate, not accepted).", "%llu",
		    (unsigned long long)p->s.rejected);
	PEER_FAMILY(b, "interlist_peer_connects_total", "counter",
		    "Sessions established with the peer.", "%llu",
		    (unsigned long long)p->s.connects);
}

#undef PEER_FAMILY

static void put_lists(struct wbuf *b, const struct list_snap *ls, size_t n)
{
	family(b, "interlist_list_ingested_total", "counter", "Local posts taken into the list.");
	for (size_t i = 0; i < n; i++)
		sample(b, "interlist_list_ingested_total", "list", ls[i].l->conf->name, "%llu",
		       (unsigned long long)ls[i].l->ingested);
	family(b, "interlist_list_delivered_total", "counter",
	       "Messages delivered to the list's target.");
	for (size_t i = 0; i < n; i++)
		sample(b, "interlist_list_delivered_total", "list", ls[i].l->conf->name, "%llu",
		       (unsigned long long)ls[i].l->delivered);
	family(b, "interlist_list_pending", "gauge", "Deliveries waiting (due or deferred).");
	for (size_t i = 0; i < n; i++)
		sample(b, "interlist_list_pending", "list", ls[i].l->conf->name, "%llu",
		       (unsigned long long)ls[i].pending);
	family(b, "interlist_list_failed", "gauge",
	       "Deliveries parked after a permanent failure (see `interlistctl failed`).");
	for (size_t i = 0; i < n; i++)
		sample(b, "interlist_list_failed", "list", ls[i].l->conf->name, "%llu",
		       (unsigned long long)ls[i].failed);

	const char *h = "interlist_delivery_latency_seconds";
	family(b, h, "histogram", "Time from a message's acceptance here to its delivery.");
	for (size_t i = 0; i < n; i++) {
		const struct latency_hist *lh = &ls[i].l->latency;
		const char *name = ls[i].l->conf->name;
		uint64_t cum = 0;
		for (size_t k = 0; k <= RELAY_LATENCY_BUCKETS; k++) {
			cum += lh->n[k];
			jb_printf(b, "%s_bucket{list=", h);
			label_value(b, name);
			jb_printf(b, ",le=\"%s\"} %llu\n",
				  k < RELAY_LATENCY_BUCKETS ? lat_bounds[k].le : "+Inf",
				  (unsigned long long)cum);
		}
		jb_printf(b, "%s_sum{list=", h);
		label_value(b, name);
		jb_printf(b, "} %lld.%03lld\n", (long long)(lh->sum_ms / 1000),
			  (long long)(lh->sum_ms % 1000));
		jb_printf(b, "%s_count{list=", h);
		label_value(b, name);
		jb_printf(b, "} %llu\n", (unsigned long long)cum);
	}
}

char *metrics_text(struct relay *r, size_t *len)
{
	struct wbuf b = { 0 };
	int64_t now = util_now_ms();
	struct peer_snap *ps = calloc(r->n_peers + 1, sizeof(*ps));
	struct list_snap *ls = calloc(r->n_lists + 1, sizeof(*ls));
	if (!ps || !ls)
		goto fail;
	/* Snapshot first: each family lists all peers, and the store is read
	 * once per peer rather than once per family. */
	for (size_t i = 0; i < r->n_peers; i++) {
		ps[i].id = peer_id(r->peers[i]);
		peer_get_stats(r->peers[i], &ps[i].s);
		store_queue_stats(r->store, ps[i].id, &ps[i].queued, &ps[i].oldest_ms);
	}
	for (size_t i = 0; i < r->n_lists; i++) {
		ls[i].l = r->lists[i];
		store_deliver_stats(r->store, r->lists[i]->conf->name, &ls[i].pending, &ls[i].failed);
	}

	family(&b, "interlist_up", "gauge", "1 while the relay runs.");
	sample(&b, "interlist_up", NULL, NULL, "1");
	family(&b, "interlist_start_time_seconds", "gauge", "Unix time the relay started.");
	sample(&b, "interlist_start_time_seconds", NULL, NULL, "%lld",
	       (long long)(r->started_ms / 1000));
	put_counters(&b, &r->c);
	put_peers(&b, ps, r->n_peers, now);
	put_lists(&b, ls, r->n_lists);

	family(&b, "interlist_tls_cert_expiry_seconds", "gauge",
	       "Seconds until the certificate expires (negative: expired); own or a peer's.");
	for (size_t i = 0; r->metrics && i < r->metrics->n_certs; i++)
		sample(&b, "interlist_tls_cert_expiry_seconds", "cert", r->metrics->certs[i].name,
		       "%lld", (long long)(r->metrics->certs[i].not_after - now / 1000));

	uint64_t msgs = 0, bytes = 0;
	int have_size = store_size(r->store, &msgs, &bytes) == 0;
	family(&b, "interlist_store_messages", "gauge", "Messages in the store.");
	if (have_size)
		sample(&b, "interlist_store_messages", NULL, NULL, "%llu", (unsigned long long)msgs);
	family(&b, "interlist_store_bytes", "gauge", "Size of the store on disk, WAL included.");
	if (have_size)
		sample(&b, "interlist_store_bytes", NULL, NULL, "%llu", (unsigned long long)bytes);

	if (b.err)
		goto fail;
	free(ps);
	free(ls);
	*len = b.len;
	wbuf_u8(&b, 0);
	if (b.err) {
		wbuf_free(&b);
		return NULL;
	}
	return (char *)b.p;
fail:
	free(ps);
	free(ls);
	wbuf_free(&b);
	return NULL;
}

void metrics_observe_delivery(struct list_rt *l, int64_t latency_ms)
{
	struct latency_hist *h = &l->latency;
	size_t k = 0;
	if (latency_ms < 0)             /* the wall clock stepped back */
		latency_ms = 0;
	while (k < RELAY_LATENCY_BUCKETS && latency_ms > lat_bounds[k].ms)
		k++;
	h->n[k]++;
	h->count++;
	h->sum_ms += latency_ms;
}

/* ---- certificates ---- */

static int cert_add(struct cert_exp *out, size_t *n, const char *name, const char *path)
{
	char err[512];
	int64_t na;
	int e = keys_check_cert(path, &na, err, sizeof(err));
	if (e < 0) {
		log_warn("metrics", "cert_unreadable", "cert=%s err=%s", name, log_q(err));
		return e;
	}
	snprintf(out[*n].name, sizeof(out[*n].name), "%s", name);
	out[*n].not_after = na;
	(*n)++;
	return 0;
}

/* Parsed once (start, reload), not per scrape: the files rarely change and a
 * scrape should not do file I/O on the loop. */
static int load_certs(struct metrics *m)
{
	const struct il_config *cfg = m->r->cfg;
	struct cert_exp *c = calloc(cfg->n_peers + 1, sizeof(*c));
	size_t n = 0;
	if (!c)
		return -ENOMEM;
	if (cfg->tls_cert.s)
		cert_add(c, &n, "own", cfg->tls_cert.s);
	for (size_t i = 0; i < cfg->n_peers; i++)
		if (cfg->peers[i].tls_cert.s)
			cert_add(c, &n, cfg->peers[i].id, cfg->peers[i].tls_cert.s);
	free(m->certs);
	m->certs = c;
	m->n_certs = n;
	return 0;
}

void metrics_reload(struct relay *r)
{
	if (r->metrics)
		load_certs(r->metrics);
}

/* ---- HTTP endpoint ---- */

static void metrics_free_if_done(struct metrics *m)
{
	if (m->stopping && m->handles == 0) {
		free(m->certs);
		free(m);
	}
}

static void conn_closed(uv_handle_t *h)
{
	struct mconn *c = h->data;
	struct metrics *m = c->m;
	m->handles--;
	if (--c->closing > 0)
		return;
	m->n_conns--;
	free(c->head);
	free(c->body);
	free(c);
	metrics_free_if_done(m);
}

static void conn_close(struct mconn *c)
{
	if (c->closing)
		return;
	c->closing = 2;
	*c->pprev = c->next;
	if (c->next)
		c->next->pprev = c->pprev;
	uv_timer_stop(&c->deadline);
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
	uv_close((uv_handle_t *)&c->deadline, conn_closed);
}

static void drain_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)hint;
	struct mconn *c = h->data;
	*buf = uv_buf_init(c->req, sizeof(c->req));
}

static void on_drain(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	(void)buf;
	if (nread < 0)
		conn_close(s->data);
}

/* Answer sent and half-closed: read what the client still sends until it
 * closes (or the deadline). Closing with unread bytes would send a reset,
 * and the client could lose the answer before reading it. */
static void shut_done(uv_shutdown_t *sh, int status)
{
	struct mconn *c = sh->data;
	if (status < 0 || c->closing ||
	    uv_read_start((uv_stream_t *)&c->tcp, drain_alloc, on_drain) < 0)
		conn_close(c);
}

static void wrote(uv_write_t *w, int status)
{
	struct mconn *c = w->data;
	/* Half-close first, so the client reads all of it before the close. */
	if (status < 0 || c->closing ||
	    uv_shutdown(&c->sh, (uv_stream_t *)&c->tcp, shut_done) < 0)
		conn_close(c);
}

/* Send status line, headers and body (owned from here; NULL for none). */
static void respond(struct mconn *c, int code, const char *reason, const char *ctype,
		    char *body, size_t body_len, int head_only, const char *extra)
{
	c->answered = 1;
	c->body = body;
	uv_read_stop((uv_stream_t *)&c->tcp);
	if (asprintf(&c->head,
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
		     "Connection: close\r\n\r\n",
		     code, reason, ctype, body_len, extra ? extra : "") < 0) {
		c->head = NULL;
		conn_close(c);
		return;
	}
	uv_buf_t bufs[2] = { uv_buf_init(c->head, (unsigned)strlen(c->head)),
			     uv_buf_init(body, (unsigned)body_len) };
	c->w.data = c;
	c->sh.data = c;
	if (uv_write(&c->w, (uv_stream_t *)&c->tcp, bufs, head_only || !body_len ? 1 : 2,
		     wrote) < 0)
		conn_close(c);
}

static void respond_text(struct mconn *c, int code, const char *reason, const char *text,
			 const char *extra)
{
	char *body = strdup(text);
	if (!body) {
		conn_close(c);
		return;
	}
	respond(c, code, reason, "text/plain; charset=utf-8", body, strlen(body), 0, extra);
}

/* The request head is c->req[0..len): route on its first line. */
static void handle_request(struct mconn *c)
{
	char *line = c->req, *eol = memchr(line, '\n', c->len);
	if (!eol)
		goto bad;
	*eol = 0;
	if (eol > line && eol[-1] == '\r')
		eol[-1] = 0;
	/* METHOD SP TARGET SP HTTP/1.x, nothing more (RFC 9112, 3). */
	char *sp1 = strchr(line, ' ');
	char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1 || strncmp(sp2 + 1, "HTTP/1.", 7) ||
	    strchr(sp2 + 1, ' '))
		goto bad;
	*sp1 = *sp2 = 0;
	const char *method = line, *target = sp1 + 1;
	size_t path_len = strcspn(target, "?");
	if (path_len != strlen("/metrics") || strncmp(target, "/metrics", path_len)) {
		respond_text(c, 404, "Not Found", "not found: try /metrics\n", NULL);
		return;
	}
	int head = !strcmp(method, "HEAD");
	if (!head && strcmp(method, "GET")) {
		respond_text(c, 405, "Method Not Allowed", "method not allowed\n",
			     "Allow: GET, HEAD\r\n");
		return;
	}
	size_t len = 0;
	char *text = metrics_text(c->m->r, &len);
	if (!text) {
		respond_text(c, 500, "Internal Server Error", "out of memory\n", NULL);
		return;
	}
	respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", text, len, head, NULL);
	return;
bad:
	respond_text(c, 400, "Bad Request", "bad request\n", NULL);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)hint;
	struct mconn *c = h->data;
	*buf = uv_buf_init(c->req + c->len, (unsigned)(sizeof(c->req) - c->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	(void)buf;
	struct mconn *c = s->data;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)nread;
	/* The head ends with an empty line; take a bare LF too (RFC 9112, 2.2). */
	if (memmem(c->req, c->len, "\r\n\r\n", 4) || memmem(c->req, c->len, "\n\n", 2)) {
		handle_request(c);
		return;
	}
	if (c->len == sizeof(c->req))
		respond_text(c, 431, "Request Header Fields Too Large", "request too large\n", NULL);
}

static void on_deadline(uv_timer_t *t)
{
	conn_close(t->data);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct metrics *m = server->data;
	if (status < 0 || m->stopping)
		return;
	struct mconn *c = calloc(1, sizeof(*c));
	if (!c) {
		/* libuv holds the connection and stops accepting until it is
		 * taken: metrics_accept_retry, on the next tick. */
		m->accept_stalled = 1;
		return;
	}
	c->m = m;
	uv_tcp_init(m->r->loop, &c->tcp);
	uv_timer_init(m->r->loop, &c->deadline);
	c->tcp.data = c->deadline.data = c;
	m->handles += 2;
	m->n_conns++;
	c->next = m->conns;
	if (c->next)
		c->next->pprev = &c->next;
	c->pprev = &m->conns;
	m->conns = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		conn_close(c);
		return;
	}
	/* Past twice the limit, not even an answer: each refused connection
	 * still holds a descriptor until its client reads the 503. */
	if (m->n_conns > 2 * METRICS_MAX_CONNS) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->deadline, on_deadline, METRICS_DEADLINE_MS, 0);
	if (m->n_conns > METRICS_MAX_CONNS) {
		respond_text(c, 503, "Service Unavailable", "too many connections\n", NULL);
		return;
	}
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
		conn_close(c);
}

static void server_closed(uv_handle_t *h)
{
	struct metrics *m = h->data;
	m->handles--;
	metrics_free_if_done(m);
}

/* Listen on `http://HOST:PORT` (validated by the config already). */
static int listen_http(struct metrics *m, const char *url, char *err, size_t errlen)
{
	const char *prefix = "http://";
	char host[256], portstr[8];
	uint16_t port;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	int e;
	if (strncmp(url, prefix, strlen(prefix)) ||
	    config_split_hostport(url + strlen(prefix), host, sizeof(host), &port) < 0) {
		snprintf(err, errlen, "metrics_listen: not http://HOST:PORT: %s", url);
		return -EINVAL;
	}
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
	/* Blocking is fine here: once, at start, before the loop runs. */
	if ((e = getaddrinfo(host, portstr, &hints, &ai)) != 0) {
		snprintf(err, errlen, "metrics_listen %s: %s", url, gai_strerror(e));
		return -EADDRNOTAVAIL;
	}
	uv_tcp_init(m->r->loop, &m->server);
	m->server.data = m;
	m->has_server = 1;
	m->handles++;
	e = uv_tcp_bind(&m->server, ai->ai_addr, 0);
	freeaddrinfo(ai);
	if (e == 0)
		e = uv_listen((uv_stream_t *)&m->server, METRICS_BACKLOG, on_connection);
	if (e < 0) {
		snprintf(err, errlen, "metrics_listen %s: %s", url, uv_strerror(e));
		return e;
	}
	log_info("metrics", "listening", "url=%s", log_q(url));
	return 0;
}

int metrics_start(struct relay *r, char *err, size_t errlen)
{
	struct metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->r = r;
	int e = load_certs(m);
	if (e < 0) {
		free(m);
		return e;
	}
	r->metrics = m;
	if (r->cfg->metrics_listen.s &&
	    (e = listen_http(m, r->cfg->metrics_listen.s, err, errlen)) < 0) {
		metrics_stop(r);
		return e;
	}
	return 0;
}

void metrics_stop(struct relay *r)
{
	struct metrics *m = r->metrics;
	if (!m)
		return;
	r->metrics = NULL;
	m->stopping = 1;
	while (m->conns)
		conn_close(m->conns);   /* unlinks itself */
	if (m->has_server)
		uv_close((uv_handle_t *)&m->server, server_closed);
	metrics_free_if_done(m);
}

void metrics_accept_retry(struct relay *r)
{
	struct metrics *m = r->metrics;
	if (m && m->accept_stalled && !m->stopping) {
		m->accept_stalled = 0;
		on_connection((uv_stream_t *)&m->server, 0);
	}
}
