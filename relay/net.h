/*
 * net.h — nng plumbing shared by net.c (sockets, TLS, the event hand-off)
 * and session.c (the protocol state machines). Loop thread only, except
 * net_post(), which nng's threads call.
 */
#ifndef IL_NET_H
#define IL_NET_H

#include <pthread.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "relay.h"

#define PUSH_WINDOW 4                   /* PUSH requests in flight per peer */
#define BATCH_MAX_MSGS 256
#define BATCH_MAX_BYTES (4u << 20)
#define PULL_WAIT_MS 15000              /* long-poll hold at the listener */
#define PULL_LINGER_MS 4                /* a held PULL waits this long for more messages */
#define PULL_LINGER_ENOUGH 32           /* ... unless this many have come */
#define REQ_TIMEOUT_MS 60000
#define RECV_MAX_BYTES (80u << 20)      /* above the largest max_message_bytes */

/* What an nng callback hands to the loop. */
enum ev_kind { EV_AIO, EV_PIPE_ADD, EV_PIPE_REM };

struct aio_owner;
typedef void (*aio_handler)(struct aio_owner *o, int result);

/* Anything that owns an nng_aio embeds this as its first member. */
struct aio_owner {
	struct net *net;
	nng_aio *aio;
	aio_handler on_done;            /* runs on the loop */
	unsigned gen;                   /* bumped when the aio is freed: stale events are dropped */
};

struct ev {
	struct ev *next;
	enum ev_kind kind;
	struct aio_owner *owner;        /* EV_AIO */
	unsigned gen;
	int result;
	struct peer *peer;              /* EV_PIPE_*: NULL for the listener socket */
	unsigned dial_gen;              /* EV_PIPE_* of a dialer: its socket's generation */
	uint32_t pipe;
};

struct rep_ctx {
	struct aio_owner o;
	nng_ctx ctx;
	int sending;
	uint32_t pipe;                  /* pipe of the request being answered */
	struct peer *held_for;          /* long-poll: waiting for this peer's queue */
	int64_t hold_until;             /* monotonic ms */
};

enum req_kind { SLOT_HELLO, SLOT_PUSH, SLOT_PULL };

struct aio_ref;

struct req_slot {
	struct aio_owner o;
	struct aio_ref *ref;            /* the aio's callback argument (net.c) */
	struct peer *p;
	enum req_kind kind;
	nng_ctx ctx;
	int busy;                       /* 0 idle, 1 sending, 2 awaiting reply, 3 processing */
	/* PUSH: what this request carries */
	size_t n;
	int64_t *seqs;
	uint8_t (*ids)[IL_SHA256_LEN];
};

/* The listener's view of a pull batch sent and not yet acknowledged. */
struct out_batch {
	uint64_t token;
	size_t n;
	int64_t *seqs;
	uint8_t (*ids)[IL_SHA256_LEN];
};

struct peer {
	struct relay *r;
	const struct il_peer_conf *conf;
	char id[IL_ID_MAX + 1];
	/* dialer role */
	int dials;
	unsigned dial_gen;              /* pipe events of an older socket are dropped */
	struct dial_tag *tag;
	nng_socket req;
	nng_dialer dialer;
	nng_tls_config *tls;
	int dstate;                     /* 0 down, 1 hello under way, 2 up */
	uint32_t dpipe;
	int yielded;                    /* both dial: we closed ours for the peer's */
	uint8_t remote_boot[WIRE_BOOT_LEN];
	struct req_slot hello, pull, push[PUSH_WINDOW];
	int64_t push_cursor;            /* highest seq handed to a PUSH */
	int push_blocked_until;         /* after TEMPFAIL, monotonic s */
	uint64_t pull_token;            /* results owed for this pulled batch */
	uint8_t *pull_results;
	size_t pull_n;
	size_t pull_temp;               /* TEMPFAIL results in that batch */
	int64_t retry_hello_at;         /* monotonic ms, 0 none */
	int64_t down_since;             /* monotonic ms the dialer has had no session */
	int unreachable_logged;
	/* listener role */
	uint32_t in_pipe;
	struct rep_ctx *held;
	int lingering;                  /* messages came for the held PULL: answer at the linger timer */
	uint32_t kicks;                 /* messages routed to p since its PULL was held */
	struct out_batch ob;
	int64_t out_cursor;
	double rate_tokens;             /* max_rate bucket */
	int64_t rate_ms;
	/* stats */
	uint64_t connects, sent, received, rejected;
	int64_t last_seen_ms, connected_since_ms;
	char last_error[128];
};

struct net {
	struct relay *r;
	int listening;
	nng_socket rep;
	nng_listener listener;
	nng_tls_config *ltls;
	struct rep_ctx **rctx;          /* each malloc'd: aios point at them */
	size_t n_rctx;
	struct peer **retired;          /* removed by a reload; freed at stop */
	size_t n_retired;
	uv_async_t async;
	uv_timer_t linger;              /* answers held PULLs a little after their first message */
	pthread_mutex_t mu;
	struct ev *head, *tail;
	uint64_t next_token;
	int abandoned;                  /* shutting down: nng's late events are dropped */
	struct peer **peers_at_exit;
	size_t n_peers_at_exit;
};

/* From nng threads: queue an event and wake the loop. */
void net_post(struct net *n, struct ev *e);
void net_aio_cb(void *arg);

/* session.c */
void session_listener_request(struct rep_ctx *rc, nng_msg *msg);
void session_rep_pipe_removed(struct relay *r, uint32_t pipe);
void session_dialer_up(struct peer *p, uint32_t pipe);
void session_dialer_down(struct peer *p, uint32_t pipe);
void session_tick(struct relay *r);
void rep_reply(struct rep_ctx *rc, struct wbuf *b);
void rep_recv(struct rep_ctx *rc);
void peer_set_error(struct peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int peer_dial_start(struct peer *p);
void peer_dial_stop(struct peer *p);
/* Drop a held long-poll with an empty answer (the peer polls again). */
void session_release_held(struct peer *p);

#endif
