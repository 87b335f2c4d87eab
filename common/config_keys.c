/* config_keys.c — what each key of each section means: one table per
 * section, one setter per kind of value, and the checks a section gets once
 * all its keys are read (required keys, defaults that depend on others). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config_int.h"
#include "il/error.h"

enum vtype {
	V_ID, V_PATH, V_TLS_URL, V_HTTP_URL, V_INT, V_SIZE, V_LOG_LEVEL, V_TLP, V_RATE,
	V_SIGN_PUB, V_LISTS, V_IDS, V_DELIVER, V_INGEST, V_ADDR, V_SMTP_TLS,
};

#define K_REQUIRED 1u
#define K_MULTI 2u      /* may repeat; values accumulate (sign_pub) */

struct key_def {
	const char *name;
	enum vtype type;
	unsigned flags;
	size_t off;             /* field in the section's struct */
	long long min, max;     /* V_INT, V_SIZE */
};

#define RK(n, t, f, field, lo, hi) { n, t, f, offsetof(struct il_config, field), lo, hi }
#define PK(n, t, f, field, lo, hi) { n, t, f, offsetof(struct il_peer_conf, field), lo, hi }
#define OK_(n, t, f, field) { n, t, f, offsetof(struct il_origin_conf, field), 0, 0 }
#define LK(n, t, f, field, lo, hi) { n, t, f, offsetof(struct il_list_conf, field), lo, hi }

static const struct key_def relay_keys[] = {
	RK("id", V_ID, K_REQUIRED, id, 0, 0),
	RK("listen", V_TLS_URL, 0, listen, 0, 0),
	RK("tls_cert", V_PATH, K_REQUIRED, tls_cert, 0, 0),
	RK("tls_key", V_PATH, K_REQUIRED, tls_key, 0, 0),
	RK("sign_key", V_PATH, K_REQUIRED, sign_key, 0, 0),
	RK("data_dir", V_PATH, K_REQUIRED, data_dir, 0, 0),
	RK("status_socket", V_PATH, 0, status_socket, 0, 0),
	RK("retention_days", V_INT, 0, retention_days, 1, 3650),
	RK("max_message_bytes", V_SIZE, 0, max_message_bytes, 1024, 64 * 1024 * 1024),
	RK("hop_limit", V_INT, 0, hop_limit, 1, IL_MAX_HOP_LIMIT),
	RK("envelope_version", V_INT, 0, envelope_version, 1, 2),
	RK("log_level", V_LOG_LEVEL, 0, log_level, 0, 0),
	RK("metrics_listen", V_HTTP_URL, 0, metrics_listen, 0, 0),
	{ NULL, 0, 0, 0, 0, 0 },
};

static const struct key_def peer_keys[] = {
	PK("url", V_TLS_URL, 0, url, 0, 0),
	PK("tls_cert", V_PATH, K_REQUIRED, tls_cert, 0, 0),
	PK("sign_pub", V_SIGN_PUB, K_REQUIRED | K_MULTI, sign_pub, 0, 0),
	PK("lists", V_LISTS, 0, lists, 0, 0),
	PK("max_tlp", V_TLP, 0, max_tlp, 0, 0),
	PK("max_rate", V_RATE, 0, max_rate, 0, 0),
	{ NULL, 0, 0, 0, 0, 0 },
};

static const struct key_def origin_keys[] = {
	OK_("sign_pub", V_SIGN_PUB, K_REQUIRED | K_MULTI, sign_pub),
	{ NULL, 0, 0, 0, 0, 0 },
};

static const struct key_def list_keys[] = {
	LK("deliver", V_DELIVER, 0, deliver, 0, 0),
	LK("default_tlp", V_TLP, 0, default_tlp, 0, 0),
	LK("ingest", V_INGEST, 0, ingest, 0, 0),
	LK("rcpt", V_ADDR, 0, rcpt, 0, 0),
	LK("mail_from", V_ADDR, 0, mail_from, 0, 0),
	LK("smtp_tls", V_SMTP_TLS, 0, smtp_tls, 0, 0),
	LK("exec_timeout", V_INT, 0, exec_timeout_s, 1, 3600),
	LK("max_deliveries", V_INT, 0, max_deliveries, 1, 64),
	LK("accept_origins", V_IDS, 0, accept_origins, 0, 0),
	{ NULL, 0, 0, 0, 0, 0 },
};

static const struct key_def *section_keys(enum config_sect s)
{
	switch (s) {
	case SECT_RELAY: return relay_keys;
	case SECT_PEER: return peer_keys;
	case SECT_ORIGIN: return origin_keys;
	case SECT_LIST: return list_keys;
	case SECT_NONE: break;
	}
	return NULL;
}

static void *section_base(struct config_parser *p)
{
	struct il_config *c = p->cfg;
	switch (p->sect) {
	case SECT_RELAY: return c;
	case SECT_PEER: return &c->peers[p->idx];
	case SECT_ORIGIN: return &c->origins[p->idx];
	case SECT_LIST: return &c->lists[p->idx];
	case SECT_NONE: break;
	}
	return NULL;
}

static int set_path(struct config_parser *p, struct il_cval *cv, const char *val, int line)
{
	char *s = config_val_path(p->cfg->dir, val);
	if (!s)
		return config_oom(p, line);
	free(cv->s);
	cv->s = s;
	cv->line = line;
	return 0;
}

static int set_url(struct config_parser *p, const char *key, const char *scheme,
		   struct il_cval *cv, const char *val, int line)
{
	const char *why = "";
	int rc = config_val_url(val, scheme, &why);
	if (rc == -EPROTONOSUPPORT)
		return config_fail(p, line, "%s: bad URL scheme in '%s': expected %s://HOST:PORT",
				   key, val, scheme);
	if (rc < 0)
		return config_fail(p, line, "%s: %s in '%s'", key, why, val);
	char *s = strdup(val);
	if (!s)
		return config_oom(p, line);
	cv->s = s;
	cv->line = line;
	return 0;
}

static int set_number(struct config_parser *p, const struct key_def *k, void *field,
		      const char *val, int line)
{
	long long v;
	int rc = config_val_int(val, &v);
	if (rc == -EINVAL)
		return config_fail(p, line, "%s: '%s' is not a whole number", k->name, val);
	if (rc < 0 || v < k->min || v > k->max)
		return config_fail(p, line, "%s: %s is out of range (%lld..%lld)", k->name, val,
				   k->min, k->max);
	if (k->type == V_SIZE)
		*(size_t *)field = (size_t)v;
	else
		*(int *)field = (int)v;
	return 0;
}

static int set_sign_pub(struct config_parser *p, const char *val, int line)
{
	struct il_cval **vec;
	size_t *n;
	char **items = NULL;
	size_t count = 0;
	int rc;

	if (p->sect == SECT_PEER) {
		vec = &p->cfg->peers[p->idx].sign_pub;
		n = &p->cfg->peers[p->idx].n_sign_pub;
	} else {
		vec = &p->cfg->origins[p->idx].sign_pub;
		n = &p->cfg->origins[p->idx].n_sign_pub;
	}
	rc = config_val_list(val, &items, &count);
	if (rc == -EINVAL)
		return config_fail(p, line, "sign_pub: empty item in '%s'", val);
	if (rc < 0)
		return config_oom(p, line);
	struct il_cval *nv = realloc(*vec, (*n + count) * sizeof(*nv));
	if (!nv) {
		rc = config_oom(p, line);
		goto out;
	}
	*vec = nv;
	for (size_t i = 0; i < count; i++) {
		char *s = config_val_path(p->cfg->dir, items[i]);
		if (!s) {
			rc = config_oom(p, line);
			goto out;
		}
		nv[*n].s = s;
		nv[*n].line = line;
		(*n)++;
	}
out:
	config_strv_free(items);
	return rc;
}

/* lists (list names) and accept_origins (relay ids). */
static int set_names(struct config_parser *p, const char *key, int ids, char ***out,
		     size_t *n, const char *val, int line)
{
	char **items = NULL;
	size_t count = 0;
	int rc = config_val_list(val, &items, &count);
	if (rc == -EINVAL)
		return config_fail(p, line, "%s: empty item in '%s'", key, val);
	if (rc < 0)
		return config_oom(p, line);
	for (size_t i = 0; i < count; i++) {
		if (ids && !config_valid_id(items[i])) {
			rc = config_fail(p, line, "%s: bad relay id '%s': use 1-%d of a-z, 0-9 and '-'",
					 key, items[i], IL_ID_MAX);
			goto fail;
		}
		if (!ids && !config_valid_list_name(items[i])) {
			rc = config_fail(p, line,
					 "%s: bad list name '%s': use 1-%d of a-z, 0-9, '.', '_' and '-'",
					 key, items[i], IL_LIST_MAX);
			goto fail;
		}
	}
	*out = items;
	*n = count;
	return 0;
fail:
	config_strv_free(items);
	return rc;
}

static int set_deliver(struct config_parser *p, struct il_list_conf *l, const char *val, int line)
{
	const char *why = "";
	int rc;

	if (strncmp(val, "maildir:", 8) == 0 && val[8]) {
		l->deliver_kind = IL_DELIVER_MAILDIR;
		l->deliver_target = config_val_path(p->cfg->dir, val + 8);
	} else if (strncmp(val, "smtp://", 7) == 0) {
		rc = config_val_hostport(val + 7, NULL, 0, NULL, &why);
		if (rc < 0)
			return config_fail(p, line, "deliver: %s in '%s'", why, val);
		l->deliver_kind = IL_DELIVER_SMTP;
		l->deliver_target = strdup(val + 7);
	} else if (strncmp(val, "exec:", 5) == 0) {
		const char *cmd = val + 5;
		while (*cmd == ' ' || *cmd == '\t')
			cmd++;
		rc = config_val_argv(cmd, &l->exec_argv, &why);
		if (rc == -ENOMEM)
			return config_oom(p, line);
		if (rc < 0)
			return config_fail(p, line, "deliver: %s in '%s'", why, val);
		l->deliver_kind = IL_DELIVER_EXEC;
		l->deliver_target = strdup(cmd);
	} else {
		return config_fail(p, line,
				   "deliver: expected maildir:PATH, smtp://HOST:PORT or exec:COMMAND, got '%s'",
				   val);
	}
	l->deliver.s = strdup(val);
	l->deliver.line = line;
	if (!l->deliver_target || !l->deliver.s)
		return config_oom(p, line);
	return 0;
}

static int set_ingest(struct config_parser *p, struct il_list_conf *l, const char *val, int line)
{
	const char *why = "";

	if (strncmp(val, "lmtp://", 7) == 0) {
		if (config_val_hostport(val + 7, NULL, 0, NULL, &why) < 0)
			return config_fail(p, line, "ingest: %s in '%s'", why, val);
		l->ingest_kind = IL_INGEST_LMTP_TCP;
		l->ingest_target = strdup(val + 7);
	} else if (strncmp(val, "lmtp:unix:", 10) == 0 && val[10]) {
		l->ingest_kind = IL_INGEST_LMTP_UNIX;
		l->ingest_target = config_val_path(p->cfg->dir, val + 10);
		if (l->ingest_target && strlen(l->ingest_target) > CONFIG_UNIX_PATH_MAX)
			return config_fail(p, line,
					   "ingest: socket path '%s' is longer than %d bytes",
					   l->ingest_target, CONFIG_UNIX_PATH_MAX);
	} else {
		return config_fail(p, line,
				   "ingest: expected lmtp://HOST:PORT or lmtp:unix:PATH, got '%s'", val);
	}
	l->ingest.s = strdup(val);
	l->ingest.line = line;
	if (!l->ingest_target || !l->ingest.s)
		return config_oom(p, line);
	return 0;
}

static int set_value(struct config_parser *p, const struct key_def *k, const char *val, int line)
{
	void *base = section_base(p);
	void *field = (char *)base + k->off;

	switch (k->type) {
	case V_ID:
		if (!config_valid_id(val))
			return config_fail(p, line, "%s: bad relay id '%s': use 1-%d of a-z, 0-9 and '-'",
					   k->name, val, IL_ID_MAX);
		memcpy(field, val, strlen(val) + 1);
		return 0;
	case V_PATH:
		return set_path(p, field, val, line);
	case V_TLS_URL:
		return set_url(p, k->name, "tls+tcp", field, val, line);
	case V_HTTP_URL:
		return set_url(p, k->name, "http", field, val, line);
	case V_INT:
	case V_SIZE:
		return set_number(p, k, field, val, line);
	case V_LOG_LEVEL: {
		static const char *const names[] = { "error", "warn", "info", "debug" };
		for (int i = 0; i < 4; i++) {
			if (strcasecmp(val, names[i]) == 0) {
				*(enum il_log_level *)field = (enum il_log_level)i;
				return 0;
			}
		}
		return config_fail(p, line, "%s: expected error, warn, info or debug, got '%s'",
				   k->name, val);
	}
	case V_TLP:
		if (tlp_parse(val, strlen(val), field) < 0)
			return config_fail(p, line,
					   "%s: expected clear, green, amber, amber+strict or red, got '%s'",
					   k->name, val);
		return 0;
	case V_RATE: {
		int rc = config_val_rate(val, field);
		if (rc == -EINVAL)
			return config_fail(p, line, "%s: '%s' is not a number", k->name, val);
		if (rc < 0)
			return config_fail(p, line, "%s: %s is out of range (0 or more)", k->name, val);
		return 0;
	}
	case V_SIGN_PUB:
		return set_sign_pub(p, val, line);
	case V_LISTS: {
		struct il_peer_conf *pc = base;
		pc->lists_line = line;
		return set_names(p, k->name, 0, &pc->lists, &pc->n_lists, val, line);
	}
	case V_IDS: {
		struct il_list_conf *l = base;
		return set_names(p, k->name, 1, &l->accept_origins, &l->n_accept_origins, val, line);
	}
	case V_DELIVER:
		return set_deliver(p, base, val, line);
	case V_INGEST:
		return set_ingest(p, base, val, line);
	case V_ADDR:
		if (!config_valid_addr(val))
			return config_fail(p, line, "%s: '%s' is not an address (local@domain)",
					   k->name, val);
		if (!(*(char **)field = strdup(val)))
			return config_oom(p, line);
		return 0;
	case V_SMTP_TLS:
		if (strcasecmp(val, "off") == 0)
			*(enum il_smtp_tls *)field = IL_SMTP_TLS_OFF;
		else if (strcasecmp(val, "starttls") == 0)
			*(enum il_smtp_tls *)field = IL_SMTP_TLS_STARTTLS;
		else if (strcasecmp(val, "required") == 0)
			*(enum il_smtp_tls *)field = IL_SMTP_TLS_REQUIRED;
		else
			return config_fail(p, line, "%s: expected off, starttls or required, got '%s'",
					   k->name, val);
		return 0;
	}
	return config_fail(p, line, "%s: internal error: no setter", k->name);
}

int config_set_key(struct config_parser *p, const char *key, const char *val, int line)
{
	char label[IL_LIST_MAX + 16];
	const struct key_def *keys = section_keys(p->sect);
	IL_ASSERT(keys != NULL);

	for (size_t i = 0; keys[i].name; i++) {
		const struct key_def *k = &keys[i];
		if (strcmp(k->name, key) != 0)
			continue;
		if ((p->seen & (1u << i)) && !(k->flags & K_MULTI))
			return config_fail(p, line, "duplicate key '%s' in %s (first at line %d)", key,
					   config_sect_label(p, label, sizeof(label)), p->seen_line[i]);
		if (!(p->seen & (1u << i)))
			p->seen_line[i] = line;
		p->seen |= 1u << i;
		if (!*val)
			return config_fail(p, line, "%s: empty value", key);
		return set_value(p, k, val, line);
	}
	return config_fail(p, line, "unknown key '%s' in %s", key,
			   config_sect_label(p, label, sizeof(label)));
}

static int close_relay(struct config_parser *p)
{
	struct il_config *c = p->cfg;
	if (!c->status_socket.s) {
		/* The default lives beside the data it reports on. */
		size_t n = strlen(c->data_dir.s) + sizeof("/status.sock");
		if (!(c->status_socket.s = malloc(n)))
			return config_oom(p, p->sect_line);
		snprintf(c->status_socket.s, n, "%s/status.sock", c->data_dir.s);
		c->status_socket.line = c->data_dir.line;
	}
	if (strlen(c->status_socket.s) > CONFIG_UNIX_PATH_MAX)
		return config_fail(p, c->status_socket.line,
				   "status_socket: '%s' is longer than %d bytes (set a shorter status_socket)",
				   c->status_socket.s, CONFIG_UNIX_PATH_MAX);
	return 0;
}

static int close_list(struct config_parser *p)
{
	struct il_list_conf *l = &p->cfg->lists[p->idx];
	char label[IL_LIST_MAX + 16];

	if (l->deliver_kind == IL_DELIVER_SMTP && !l->rcpt)
		return config_fail(p, p->sect_line,
				   "%s: missing required key 'rcpt' (deliver = smtp://... needs it)",
				   config_sect_label(p, label, sizeof(label)));
	if (!l->mail_from) {
		if (!p->hostname) {
			char h[256];
			if (gethostname(h, sizeof(h)) < 0 || !h[0])
				strcpy(h, "localhost");
			h[sizeof(h) - 1] = 0;
			if (!(p->hostname = strdup(h)))
				return config_oom(p, p->sect_line);
		}
		size_t n = strlen(p->hostname) + sizeof("interlist@");
		if (!(l->mail_from = malloc(n)))
			return config_oom(p, p->sect_line);
		snprintf(l->mail_from, n, "interlist@%s", p->hostname);
	}
	return 0;
}

int config_close_section(struct config_parser *p)
{
	char label[IL_LIST_MAX + 16];
	const struct key_def *keys = section_keys(p->sect);
	if (!keys)
		return 0;
	for (size_t i = 0; keys[i].name; i++)
		if ((keys[i].flags & K_REQUIRED) && !(p->seen & (1u << i)))
			return config_fail(p, p->sect_line, "%s: missing required key '%s'",
					   config_sect_label(p, label, sizeof(label)), keys[i].name);
	if (p->sect == SECT_RELAY)
		return close_relay(p);
	if (p->sect == SECT_LIST)
		return close_list(p);
	return 0;
}
