/*
 * relay.c — the daemon's shared state: trust snapshots (config + public
 * keys), lookups, the periodic tick (queue expiry, pruning, nonce cache) and
 * signal handling.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "il/error.h"
#include "il/log.h"
#include "il/util.h"
#include "relay.h"

static int add_keys(struct trust_entry *te, const char *id, const struct il_cval *paths, size_t n,
		    const char *cfgpath, char *err, size_t errlen)
{
	snprintf(te->id, sizeof(te->id), "%s", id);
	te->keys = calloc(n, sizeof(*te->keys));
	if (!te->keys)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char why[256];
		int e = keys_load_public(paths[i].s, &te->keys[i], why, sizeof(why));
		if (e < 0) {
			snprintf(err, errlen, "%s:%d: sign_pub: %s: %s", cfgpath, paths[i].line,
				 paths[i].s, why);
			return e;
		}
		te->n_keys++;
	}
	return 0;
}

struct trust *trust_new(struct il_config *cfg, char *err, size_t errlen)
{
	struct trust *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->refs = 1;
	t->cfg = cfg;
	t->entries = calloc(cfg->n_peers + cfg->n_origins + 1, sizeof(*t->entries));
	if (!t->entries)
		goto fail;
	for (size_t i = 0; i < cfg->n_peers; i++)
		if (add_keys(&t->entries[t->n++], cfg->peers[i].id, cfg->peers[i].sign_pub,
			     cfg->peers[i].n_sign_pub, cfg->path, err, errlen) < 0)
			goto fail;
	for (size_t i = 0; i < cfg->n_origins; i++)
		if (add_keys(&t->entries[t->n++], cfg->origins[i].id, cfg->origins[i].sign_pub,
			     cfg->origins[i].n_sign_pub, cfg->path, err, errlen) < 0)
			goto fail;
	return t;
fail:
	t->cfg = NULL;  /* the caller still owns cfg on failure */
	trust_release(t);
	return NULL;
}

struct trust *trust_hold(struct trust *t)
{
	t->refs++;
	return t;
}

void trust_release(struct trust *t)
{
	if (!t || --t->refs > 0)
		return;
	for (size_t i = 0; i < t->n; i++) {
		for (size_t k = 0; k < t->entries[i].n_keys; k++)
			EVP_PKEY_free(t->entries[i].keys[k]);
		free(t->entries[i].keys);
	}
	free(t->entries);
	config_free(t->cfg);
	free(t);
}

const struct trust_entry *trust_find(const struct trust *t, const char *id)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->entries[i].id, id))
			return &t->entries[i];
	return NULL;
}

struct list_rt *relay_list(struct relay *r, const char *name)
{
	for (size_t i = 0; i < r->n_lists; i++)
		if (!strcmp(r->lists[i]->conf->name, name))
			return r->lists[i];
	return NULL;
}

struct peer *relay_peer(struct relay *r, const char *id)
{
	for (size_t i = 0; i < r->n_peers; i++)
		if (!strcmp(peer_id(r->peers[i]), id))
			return r->peers[i];
	return NULL;
}

int relay_lists_sync(struct relay *r, const struct il_config *cfg)
{
	struct list_rt **nl = calloc(cfg->n_lists + 1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_lists; i++) {
		struct list_rt *l = relay_list(r, cfg->lists[i].name);
		if (!l && !(l = calloc(1, sizeof(*l)))) {
			for (size_t k = 0; k < i; k++)
				if (!relay_list(r, nl[k]->conf->name))
					free(nl[k]);
			free(nl);
			return -ENOMEM;
		}
		l->conf = &cfg->lists[i];
		nl[i] = l;
	}
	/* Lists no longer configured (stopped by the caller): work that is
	 * still finishing may point at them, so they live until exit. */
	for (size_t i = 0; i < r->n_lists; i++) {
		int kept = 0;
		for (size_t k = 0; k < cfg->n_lists; k++)
			kept |= nl[k] == r->lists[i];
		if (kept)
			continue;
		struct list_rt **rl = realloc(r->retired_lists,
					      (r->n_retired_lists + 1) * sizeof(*rl));
		IL_ASSERT(rl);
		r->retired_lists = rl;
		/* A delivery restart an earlier reload left for when the old
		 * deliverer drains is void: the list is gone (and its conf
		 * goes with that reload's config). */
		r->lists[i]->restart_pending = 0;
		rl[r->n_retired_lists++] = r->lists[i];
	}
	free(r->lists);
	r->lists = nl;
	r->n_lists = cfg->n_lists;
	return 0;
}

void relay_lists_free(struct relay *r)
{
	for (size_t i = 0; i < r->n_lists; i++)
		free(r->lists[i]);
	free(r->lists);
	r->lists = NULL;
	r->n_lists = 0;
	for (size_t i = 0; i < r->n_retired_lists; i++)
		free(r->retired_lists[i]);
	free(r->retired_lists);
	r->retired_lists = NULL;
}
