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

#include "il/error.h"
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

/* Settings of a list that its running delivery or ingest depends on. */
static int list_io_changed(const struct il_list_conf *a, const struct il_list_conf *b)
{
	return !same(a->deliver.s, b->deliver.s) || !same(a->ingest.s, b->ingest.s) ||
	       !same(a->rcpt, b->rcpt) || !same(a->mail_from, b->mail_from) ||
	       a->smtp_tls != b->smtp_tls || a->exec_timeout_s != b->exec_timeout_s ||
	       a->max_deliveries != b->max_deliveries;
}

int relay_reload(struct relay *r, char *err, size_t errlen)
{
	struct il_config *cfg = NULL;
	struct trust *t = NULL;
	int *restart = NULL;
	int e;
	if ((e = config_load(r->config_path, &cfg, err, errlen)) < 0 ||
	    (e = config_check_files(cfg, err, errlen)) < 0 ||
	    (e = fixed_unchanged(r->cfg, cfg, err, errlen)) < 0)
		goto refuse;
	if (!(t = trust_new(cfg, err, errlen)))
		goto refuse;
	cfg = NULL;     /* t owns it */
	restart = calloc(t->cfg->n_lists + 1, sizeof(*restart));
	if (!restart) {
		snprintf(err, errlen, "%s: out of memory", r->config_path);
		goto refuse;
	}
	if ((e = net_reload(r, t->cfg, err, errlen)) < 0)
		goto refuse;

	/* Lists: stop what goes away or changes, swap, start what is new. */
	for (size_t i = 0; i < r->n_lists; i++) {
		struct list_rt *l = r->lists[i];
		const struct il_list_conf *nl = config_list(t->cfg, l->conf->name);
		if (!nl || list_io_changed(l->conf, nl)) {
			deliver_stop(l);
			ingest_stop(l);
		}
	}
	for (size_t i = 0; i < t->cfg->n_lists; i++) {
		struct list_rt *l = relay_list(r, t->cfg->lists[i].name);
		restart[i] = !l || list_io_changed(l->conf, &t->cfg->lists[i]);
	}
	struct trust *old = r->trust;
	r->trust = t;
	r->cfg = t->cfg;
	if ((e = relay_lists_sync(r, r->cfg)) < 0)
		IL_ASSERT(!"out of memory while applying a reload");
	for (size_t i = 0; i < r->n_lists; i++) {
		if (!restart[i])
			continue;
		char why[512];
		deliver_start(r, r->lists[i]);
		if (ingest_start(r, r->lists[i], why, sizeof(why)) < 0)
			log_err("ingest", "start_failed", "list=%s err=%s", r->lists[i]->conf->name,
				log_q(why));
	}
	log_set_level(r->cfg->log_level);
	metrics_reload(r);
	trust_release(old);
	log_info("relay", "reloaded", "peers=%zu lists=%zu", r->n_peers, r->n_lists);
	/* New peers and lists may have work waiting in the store already. */
	for (size_t i = 0; i < r->n_peers; i++)
		peer_kick(r->peers[i]);
	free(restart);
	return 0;
refuse:
	free(restart);
	log_warn("relay", "reload_refused", "err=%s", log_q(err));
	config_free(cfg);
	if (t)
		trust_release(t);
	return IL_ECONFIG;
}
