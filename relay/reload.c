/*
 * reload.c — SIGHUP and the `reload` command: re-read the config and apply
 * it without a restart. Everything that can fail (parsing, opening keys,
 * building TLS configs) happens before anything changes, so a refused config
 * leaves the old one in force. Peers and lists whose settings did not change
 * keep their connections, queues and deliveries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "il/error.h"
#include "il/envelope.h"
#include "il/log.h"
#include "metrics.h"
#include "relay.h"

static int same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* [relay] settings bound to sockets, files and identity need a restart. */
static int fixed_unchanged(const struct il_config *o, const struct il_config *n, char *err,
			   size_t errlen)
{
	const struct {
		const char *key;
		const struct il_cval *a, *b;
	} f[] = {
		{ "listen", &o->listen, &n->listen },
		{ "tls_cert", &o->tls_cert, &n->tls_cert },
		{ "tls_key", &o->tls_key, &n->tls_key },
		{ "sign_key", &o->sign_key, &n->sign_key },
		{ "data_dir", &o->data_dir, &n->data_dir },
		{ "status_socket", &o->status_socket, &n->status_socket },
		{ "metrics_listen", &o->metrics_listen, &n->metrics_listen },
	};
	if (strcmp(o->id, n->id) != 0) {
		snprintf(err, errlen, "%s:%d: id cannot change on reload (restart interlistd)",
			 n->path, n->relay_line);
		return IL_ECONFIG;
	}
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		if (same(f[i].a->s, f[i].b->s))
			continue;
		snprintf(err, errlen, "%s:%d: %s cannot change on reload (restart interlistd)",
			 n->path, f[i].b->line ? f[i].b->line : n->relay_line, f[i].key);
		return IL_ECONFIG;
	}
	return 0;
}

/* Settings of a list that its running delivery depends on. */
static int deliver_changed(const struct il_list_conf *a, const struct il_list_conf *b)
{
	return !same(a->deliver.s, b->deliver.s) || !same(a->rcpt, b->rcpt) ||
	       !same(a->mail_from, b->mail_from) || a->smtp_tls != b->smtp_tls ||
	       a->exec_timeout_s != b->exec_timeout_s || a->max_deliveries != b->max_deliveries;
}

/* The listener depends on its address alone: a reload that changes only the
 * delivery leaves the MTA's sessions alone. */
static int ingest_changed(const struct il_list_conf *a, const struct il_list_conf *b)
{
	return !same(a->ingest.s, b->ingest.s);
}

/* Could want's address be the same as o's, spelled another way (a name
 * for the same host, a wildcard, a symlink to the socket)? */
static int same_socket(const struct il_list_conf *o, const struct il_list_conf *want)
{
	if (o->ingest_kind != want->ingest_kind)
		return 0;
	if (o->ingest_kind == IL_INGEST_LMTP_UNIX) {
		struct stat a, b;
		return stat(o->ingest_target, &a) == 0 && stat(want->ingest_target, &b) == 0 &&
		       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
	}
	char h[256];
	uint16_t pa, pb;
	return config_split_hostport(o->ingest_target, h, sizeof(h), &pa) == 0 &&
	       config_split_hostport(want->ingest_target, h, sizeof(h), &pb) == 0 && pa == pb;
}

/* Will the address the new list wants be freed by this reload (a list
 * renamed, two lists trading places)? Then it can only be bound once the
 * old listener is closed. loose: the same port or socket file, however
 * written (asked once an early bind failed). */
static int held_by_stopping(const struct relay *r, const struct il_config *n,
			    const struct il_list_conf *want, int loose)
{
	for (size_t i = 0; i < r->n_lists; i++) {
		const struct il_list_conf *o = r->lists[i]->conf;
		const struct il_list_conf *stays = config_list(n, o->name);
		if (!r->lists[i]->in || (stays && !ingest_changed(o, stays)))
			continue;
		if (same(o->ingest.s, want->ingest.s) || (loose && same_socket(o, want)))
			return 1;
	}
	return 0;
}

/* Open the listeners the new configuration adds or moves, before anything
 * changes: an address that is taken refuses the reload with the old
 * configuration in force. opened[i] (the new list i) gets the listener;
 * late[i] marks one that can only be opened after the old ones close, and
 * one whose listener failed before (its address unchanged): retried, but
 * its failure does not hold up the rest (a peer to remove, say). */
static int open_ingests(struct relay *r, const struct il_config *n, struct ingest **opened,
			int *late, char *err, size_t errlen)
{
	for (size_t i = 0; i < n->n_lists; i++) {
		const struct il_list_conf *lc = &n->lists[i];
		const struct list_rt *l = relay_list(r, lc->name);
		char why[512];
		if (lc->ingest_kind == IL_INGEST_NONE)
			continue;
		if (l && !ingest_changed(l->conf, lc)) {
			late[i] = !l->in;       /* kept, or tried again after */
			continue;
		}
		if (held_by_stopping(r, n, lc, 0)) {
			late[i] = 1;
			continue;
		}
		if ((opened[i] = ingest_open(r, lc, why, sizeof(why))))
			continue;
		if (held_by_stopping(r, n, lc, 1)) {
			late[i] = 1;
			continue;
		}
		snprintf(err, errlen, "%s:%d: ingest: %s", n->path, lc->ingest.line, why);
		return IL_ECONFIG;
	}
	return 0;
}

/* Did a peer's reload narrow what it may receive (lower max_tlp, fewer lists)? */
static int narrowed(const struct il_peer_conf *o, const struct il_peer_conf *n)
{
	if (n->max_tlp < o->max_tlp)
		return 1;
	if (n->n_lists == 0)
		return 0;
	if (o->n_lists == 0)
		return 1;
	for (size_t i = 0; i < o->n_lists; i++)
		if (!config_peer_has_list(n, o->lists[i]))
			return 1;
	return 0;
}

/* Routing was decided when each message was stored: drop what a peer's
 * new settings no longer let it see from what is already queued for it. */
static void filter_queue(struct relay *r, const struct il_peer_conf *pc)
{
	int64_t cursor = 0;
	uint64_t dropped = 0;
	for (;;) {
		struct store_entry ents[256];
		size_t n = 0;
		if (store_queue_fetch(r->store, pc->id, cursor, 256, 8u << 20, ents, &n) < 0 || n == 0)
			break;
		for (size_t i = 0; i < n; i++) {
			struct il_envelope env = { 0 };
			uint64_t one = 0;
			cursor = ents[i].seq;
			if (envelope_decode(ents[i].blob, ents[i].blob_len, SIZE_MAX, &env, NULL) < 0)
				continue;
			if (env.tlp == IL_TLP_RED || env.tlp > pc->max_tlp ||
			    !config_peer_has_list(pc, env.list)) {
				store_queue_purge(r->store, pc->id, env.id, &one);
				dropped += one;
			}
			envelope_free(&env);
		}
		store_entries_free(ents, n);
	}
	if (dropped) {
		r->c.held_tlp += dropped;
		log_warn("peer", "queue_filtered", "peer=%s dropped=%llu", pc->id,
			 (unsigned long long)dropped);
	}
}

int relay_reload(struct relay *r, char *err, size_t errlen)
{
	struct il_config *cfg = NULL;
	struct trust *t = NULL;
	struct ingest **opened = NULL;
	int *restart = NULL, *late = NULL, *narrow = NULL;
	size_t n_new = 0;
	int e;
	if ((e = config_load(r->config_path, &cfg, err, errlen)) < 0 ||
	    (e = config_check_files(cfg, err, errlen)) < 0 ||
	    (e = fixed_unchanged(r->cfg, cfg, err, errlen)) < 0)
		goto refuse;
	if (!(t = trust_new(cfg, err, errlen)))
		goto refuse;
	cfg = NULL;     /* t owns it */
	n_new = t->cfg->n_lists;
	restart = calloc(n_new + 1, sizeof(*restart));
	late = calloc(n_new + 1, sizeof(*late));
	opened = calloc(n_new + 1, sizeof(*opened));
	narrow = calloc(t->cfg->n_peers + 1, sizeof(*narrow));
	if (!restart || !late || !opened || !narrow) {
		snprintf(err, errlen, "%s: out of memory", r->config_path);
		goto refuse;
	}
	for (size_t i = 0; i < t->cfg->n_peers; i++) {
		const struct il_peer_conf *o = config_peer(r->cfg, t->cfg->peers[i].id);
		narrow[i] = o && narrowed(o, &t->cfg->peers[i]);
	}
	if ((e = open_ingests(r, t->cfg, opened, late, err, errlen)) < 0 ||
	    (e = net_reload(r, t->cfg, err, errlen)) < 0)
		goto refuse;
	/* From here on the reload happens: nothing may refuse it. */
	for (size_t i = 0; i < t->cfg->n_peers; i++)
		if (narrow[i])
			filter_queue(r, &t->cfg->peers[i]);

	/* Lists: stop what goes away or changes, swap, start what is new. */
	for (size_t i = 0; i < r->n_lists; i++) {
		struct list_rt *l = r->lists[i];
		const struct il_list_conf *nl = config_list(t->cfg, l->conf->name);
		if (!nl || deliver_changed(l->conf, nl))
			deliver_stop(l);
		if (!nl || ingest_changed(l->conf, nl))
			ingest_stop(l);
	}
	for (size_t i = 0; i < n_new; i++) {
		struct list_rt *l = relay_list(r, t->cfg->lists[i].name);
		restart[i] = !l || deliver_changed(l->conf, &t->cfg->lists[i]);
	}
	struct trust *old = r->trust;
	r->trust = t;
	r->cfg = t->cfg;
	if ((e = relay_lists_sync(r, r->cfg)) < 0)
		IL_ASSERT(!"out of memory while applying a reload");
	int ingest_failed = 0;
	for (size_t i = 0; i < r->n_lists; i++) {
		struct list_rt *l = r->lists[i];
		char why[512];
		if (restart[i]) {
			if (l->draining)
				l->restart_pending = 1;
			else
				deliver_start(r, l);
		}
		if (opened[i]) {
			ingest_attach(opened[i], l);
			opened[i] = NULL;
			continue;
		}
		if (late[i] && ingest_start(r, l, why, sizeof(why)) < 0) {
			log_err("ingest", "start_failed", "list=%s err=%s", l->conf->name, log_q(why));
			/* Too late to refuse (the old listener is closed): say so,
			 * so that `interlistctl reload` does not answer "ok". */
			if (!ingest_failed++)
				snprintf(err, errlen, "%s:%d: ingest: %s (the rest of the new "
					 "configuration is in force; fix it and reload)", r->config_path,
					 l->conf->ingest.line, why);
		}
	}
	log_set_level(r->cfg->log_level);
	metrics_reload(r);
	trust_release(old);
	log_info("relay", "reloaded", "peers=%zu lists=%zu", r->n_peers, r->n_lists);
	/* New peers and lists may have work waiting in the store already. */
	for (size_t i = 0; i < r->n_peers; i++)
		peer_kick(r->peers[i]);
	free(restart);
	free(late);
	free(opened);
	free(narrow);
	return ingest_failed ? IL_ECONFIG : 0;
refuse:
	for (size_t i = 0; opened && i < n_new; i++)
		ingest_discard(opened[i]);
	free(opened);
	free(late);
	free(narrow);
	free(restart);
	log_warn("relay", "reload_refused", "err=%s", log_q(err));
	config_free(cfg);
	if (t)
		trust_release(t);
	return IL_ECONFIG;
}
