/*
 * status_ops.c — operation commands of the status socket beyond status and
 * submit: peers, metrics, queue (read-only, any caller who may connect) and
 * purge (changes state: root or the daemon's user only), and the delivery
 * commands failed/retry (status_deliver.c).
 *
 * Answers are one JSON document (peers, queue, purge), the Prometheus text
 * (metrics), or `err CODE text` with a sysexits code that interlistctl
 * exits with: 64 usage, 65 unknown peer or message, 75 store error,
 * 77 permission denied.
 */
#include <stdlib.h>
#include <string.h>

#include "il/error.h"
#include "il/log.h"
#include "il/util.h"
#include "metrics.h"
#include "net.h"
#include "status.h"

/* What `queue PEER` lists at most: an operator reads it, and a stuck peer's
 * queue can hold a lot; "truncated" says there is more. */
#define QUEUE_LIST_MAX 1000
/* Blobs come with each fetched entry: page so at most this much (plus one
 * message) is in memory at once. */
#define QUEUE_PAGE_MSGS 128
#define QUEUE_PAGE_BYTES (8u << 20)

static void answer_json(struct conn *c, struct wbuf *b)
{
	wbuf_u8(b, 0);
	if (b->err) {
		wbuf_free(b);
		status_answerf(c, "err 75 out of memory\n");
		return;
	}
	status_answer(c, (char *)b->p, b->len - 1);
}

/* "age": whole seconds since ms (wall clock), or null when ms is 0. */
static void json_age(struct wbuf *b, int64_t ms, int64_t now)
{
	if (!ms)
		jb_printf(b, "null");
	else
		jb_printf(b, "%lld", (long long)(now > ms ? (now - ms) / 1000 : 0));
}

static void cmd_peers(struct conn *c, struct relay *r)
{
	struct wbuf b = { 0 };
	int64_t now = util_now_ms();
	jb_printf(&b, "{\"peers\":[");
	for (size_t i = 0; i < r->n_peers; i++) {
		struct peer *p = r->peers[i];
		struct peer_stats s;
		uint64_t queued = 0;
		int64_t oldest = 0;
		peer_get_stats(p, &s);
		store_queue_stats(r->store, peer_id(p), &queued, &oldest);
		jb_printf(&b, "%s{\"id\":", i ? "," : "");
		jb_str(&b, peer_id(p));
		/* A peer without url dials us: there is no address to show. */
		jb_printf(&b, ",\"address\":");
		jb_str(&b, p->conf && p->conf->url.s ? p->conf->url.s : "inbound");
		jb_printf(&b, ",\"connected\":%s,\"connected_since\":", s.connected ? "true" : "false");
		if (s.connected && s.connected_since_ms)
			jb_printf(&b, "%lld", (long long)(s.connected_since_ms / 1000));
		else
			jb_printf(&b, "null");
		jb_printf(&b, ",\"last_error\":");
		if (s.last_error[0])
			jb_str(&b, s.last_error);
		else
			jb_printf(&b, "null");
		jb_printf(&b, ",\"queued\":%llu,\"oldest_queued_s\":", (unsigned long long)queued);
		json_age(&b, queued ? oldest : 0, now);
		jb_printf(&b, ",\"connects\":%llu,\"sent\":%llu,\"received\":%llu,\"rejected\":%llu,"
			      "\"last_seen\":",
			  (unsigned long long)s.connects, (unsigned long long)s.sent,
			  (unsigned long long)s.received, (unsigned long long)s.rejected);
		if (s.last_seen_ms)
			jb_printf(&b, "%lld}", (long long)(s.last_seen_ms / 1000));
		else
			jb_printf(&b, "null}");
	}
	jb_printf(&b, "]}\n");
	answer_json(c, &b);
}

static void cmd_metrics(struct conn *c, struct relay *r)
{
	size_t len = 0;
	char *text = metrics_text(r, &len);
	if (!text) {
		status_answerf(c, "err 75 out of memory\n");
		return;
	}
	status_answer(c, text, len);
}

/* The peer named by the next argument, or NULL after answering why not. */
static struct peer *arg_peer(struct conn *c, struct relay *r, char **save, const char *usage)
{
	char *id = strtok_r(NULL, " ", save);
	if (!id) {
		status_answerf(c, "err 64 usage: %s\n", usage);
		return NULL;
	}
	struct peer *p = relay_peer(r, id);
	if (!p)
		status_answerf(c, "err 65 unknown peer: %.64s\n", id);
	return p;
}

static void cmd_queue(struct conn *c, struct relay *r, char *args)
{
	char *save = args;
	struct peer *p = arg_peer(c, r, &save, "queue PEER");
	if (!p)
		return;
	const char *peer = peer_id(p);
	uint64_t total = 0;
	int64_t after = 0, now = util_now_ms();
	size_t listed = 0;
	int truncated = 0, e;
	struct store_entry ents[QUEUE_PAGE_MSGS];
	struct wbuf b = { 0 };
	if ((e = store_queue_stats(r->store, peer, &total, NULL)) < 0)
		goto fail;
	jb_printf(&b, "{\"peer\":");
	jb_str(&b, peer);
	jb_printf(&b, ",\"queued\":%llu,\"messages\":[", (unsigned long long)total);
	/* Oldest first, as the queue sends them. One more than the cap tells
	 * whether there is more without counting it all again. */
	while (!truncated) {
		size_t n = 0;
		if ((e = store_queue_fetch(r->store, peer, after, QUEUE_PAGE_MSGS, QUEUE_PAGE_BYTES,
					   ents, &n)) < 0)
			goto fail;
		if (n == 0)
			break;
		for (size_t i = 0; i < n; i++) {
			if (listed == QUEUE_LIST_MAX) {
				truncated = 1;
				break;
			}
			char hex[IL_ID_HEX_LEN + 1];
			envelope_id_hex(ents[i].id, hex);
			jb_printf(&b, "%s{\"id\":\"%s\",\"age_s\":", listed ? "," : "", hex);
			json_age(&b, ents[i].queued_ms, now);
			jb_printf(&b, ",\"size\":%zu}", ents[i].blob_len);
			listed++;
		}
		after = ents[n - 1].seq;
		store_entries_free(ents, n);
	}
	jb_printf(&b, "],\"truncated\":%s}\n", truncated ? "true" : "false");
	answer_json(c, &b);
	return;
fail:
	wbuf_free(&b);
	log_err("status", "queue_failed", "peer=%s err=%s", peer, log_q(il_strerror(e)));
	status_answerf(c, "err 75 store: %s\n", il_strerror(e));
}

static void cmd_purge(struct conn *c, struct relay *r, char *args)
{
	uid_t uid = (uid_t)-1;
	/* Before anything else: an unprivileged caller learns nothing, not even
	 * whether the peer exists. */
	if (!status_caller_privileged(c)) {
		status_answerf(c, "err 77 permission denied\n");
		return;
	}
	status_peer_uid(c, &uid);
	char *save = args;
	struct peer *p = arg_peer(c, r, &save, "purge PEER [ID]");
	if (!p)
		return;
	const char *peer = peer_id(p);
	char *hex = strtok_r(NULL, " ", &save);
	uint8_t id[IL_SHA256_LEN];
	if (hex && envelope_id_parse(hex, id) < 0) {
		status_answerf(c, "err 64 not a message id (64 hex digits): %.80s\n", hex);
		return;
	}
	if (strtok_r(NULL, " ", &save)) {
		status_answerf(c, "err 64 usage: purge PEER [ID]\n");
		return;
	}
	uint64_t removed = 0;
	int e = store_queue_purge(r->store, peer, hex ? id : NULL, &removed);
	if (e < 0) {
		log_err("status", "purge_failed", "peer=%s err=%s", peer, log_q(il_strerror(e)));
		status_answerf(c, "err 75 store: %s\n", il_strerror(e));
		return;
	}
	if (hex && removed == 0) {
		status_answerf(c, "err 65 message %.64s is not queued for %s\n", hex, peer);
		return;
	}
	r->c.purged += removed;
	log_warn("peer", "purged", "peer=%s msg=%s messages=%llu uid=%lu", peer,
		 hex ? hex : "all", (unsigned long long)removed, (unsigned long)uid);
	struct wbuf b = { 0 };
	jb_printf(&b, "{\"peer\":");
	jb_str(&b, peer);
	jb_printf(&b, ",\"purged\":%llu}\n", (unsigned long long)removed);
	answer_json(c, &b);
}

int status_extra_command(struct conn *c, struct relay *r, const char *cmd, char *args)
{
	char none[1] = "";
	if (status_deliver_command(c, r, cmd, args))
		return 1;
	if (!args)
		args = none;    /* strtok_r must not continue from NULL */
	if (!strcmp(cmd, "peers"))
		cmd_peers(c, r);
	else if (!strcmp(cmd, "metrics"))
		cmd_metrics(c, r);
	else if (!strcmp(cmd, "queue"))
		cmd_queue(c, r, args);
	else if (!strcmp(cmd, "purge"))
		cmd_purge(c, r, args);
	else
		return 0;
	return 1;
}
