/* config.c — reading the INI file: lines, comments, section headers, checks
 * that need the whole file; config_check_files(); lookups; config_free().
 * What each key means is in config_keys.c, value syntax in config_value.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "config_int.h"
#include "il/crypto.h"
#include "il/error.h"
#include "il/util.h"

static int is_blank(char c) { return c == ' ' || c == '\t'; }

static void write_err(char *err, size_t errlen, const char *name, int line, const char *fmt,
		      va_list ap)
{
	if (!err || errlen == 0)
		return;
	int n = snprintf(err, errlen, "%s:%d: ", name, line);
	if (n >= 0 && (size_t)n < errlen)
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
}

int config_fail(struct config_parser *p, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	write_err(p->err, p->errlen, p->name, line, fmt, ap);
	va_end(ap);
	return IL_ECONFIG;
}

int config_oom(struct config_parser *p, int line)
{
	config_fail(p, line, "out of memory");
	return -ENOMEM;
}

const char *config_sect_label(const struct config_parser *p, char *buf, size_t len)
{
	const struct il_config *c = p->cfg;
	switch (p->sect) {
	case SECT_RELAY: snprintf(buf, len, "[relay]"); break;
	case SECT_PEER: snprintf(buf, len, "[peer %s]", c->peers[p->idx].id); break;
	case SECT_ORIGIN: snprintf(buf, len, "[origin %s]", c->origins[p->idx].id); break;
	case SECT_LIST: snprintf(buf, len, "[list %s]", c->lists[p->idx].name); break;
	case SECT_NONE: snprintf(buf, len, "(no section)"); break;
	}
	return buf;
}

/* Grow an array of structs by one zeroed element; returns it or NULL. */
static void *push_zeroed(void **arr, size_t *n, size_t size)
{
	char *na = realloc(*arr, (*n + 1) * size);
	if (!na)
		return NULL;
	*arr = na;
	memset(na + *n * size, 0, size);
	return na + (*n)++ * size;
}

static int open_section(struct config_parser *p, enum config_sect kind, const char *name,
			int line)
{
	struct il_config *c = p->cfg;
	void *e = NULL;

	switch (kind) {
	case SECT_RELAY:
		c->relay_line = line;
		break;
	case SECT_PEER: {
		struct il_peer_conf *pc = push_zeroed((void **)&c->peers, &c->n_peers, sizeof(*pc));
		if ((e = pc)) {
			memcpy(pc->id, name, strlen(name) + 1);
			pc->line = line;
			pc->max_tlp = IL_TLP_AMBER;
		}
		p->idx = c->n_peers - 1;
		break;
	}
	case SECT_ORIGIN: {
		struct il_origin_conf *o = push_zeroed((void **)&c->origins, &c->n_origins,
						       sizeof(*o));
		if ((e = o)) {
			memcpy(o->id, name, strlen(name) + 1);
			o->line = line;
		}
		p->idx = c->n_origins - 1;
		break;
	}
	case SECT_LIST: {
		struct il_list_conf *l = push_zeroed((void **)&c->lists, &c->n_lists, sizeof(*l));
		if ((e = l)) {
			memcpy(l->name, name, strlen(name) + 1);
			l->line = line;
			l->default_tlp = IL_TLP_AMBER;
			l->smtp_tls = IL_SMTP_TLS_STARTTLS;
			l->exec_timeout_s = 60;
			l->max_deliveries = 4;
		}
		p->idx = c->n_lists - 1;
		break;
	}
	case SECT_NONE:
		break;
	}
	if (kind != SECT_RELAY && !e)
		return config_oom(p, line);
	p->sect = kind;
	p->sect_line = line;
	p->seen = 0;
	return 0;
}

/* "[TYPE]" or "[TYPE NAME]", blanks around words ignored. */
static int parse_header(struct config_parser *p, char *s, int line)
{
	struct il_config *c = p->cfg;
	char *close = strchr(s, ']');
	if (!close)
		return config_fail(p, line, "section header without ']'");
	for (char *r = close + 1; *r && *r != '#' && *r != ';'; r++)
		if (!is_blank(*r))
			return config_fail(p, line, "unexpected text after ']': '%s'", r);
	*close = 0;

	char *words[3] = { NULL, NULL, NULL };
	int nw = 0;
	for (char *t = s + 1; *t;) {
		while (is_blank(*t))
			*t++ = 0;
		if (!*t)
			break;
		if (nw == 3)
			return config_fail(p, line, "too many words in section header");
		words[nw++] = t;
		while (*t && !is_blank(*t))
			t++;
	}
	if (nw == 0)
		return config_fail(p, line, "empty section header []");
	if (nw > 2)
		return config_fail(p, line, "too many words in section header [%s %s %s]",
				   words[0], words[1], words[2]);

	/* The section that ends is checked first: its errors come earlier. */
	int rc = config_close_section(p);
	if (rc < 0)
		return rc;

	const char *type = words[0], *name = words[1];
	if (strcmp(type, "relay") == 0) {
		if (name)
			return config_fail(p, line, "[relay] takes no name, got '%s'", name);
		if (c->relay_line)
			return config_fail(p, line, "duplicate section [relay] (first at line %d)",
					   c->relay_line);
		return open_section(p, SECT_RELAY, NULL, line);
	}
	if (strcmp(type, "peer") == 0 || strcmp(type, "origin") == 0) {
		int peer = type[0] == 'p';
		if (!name)
			return config_fail(p, line, "section [%s] needs an id: [%s ID]", type, type);
		if (!config_valid_id(name))
			return config_fail(p, line, "bad %s id '%s': use 1-%d of a-z, 0-9 and '-'",
					   type, name, IL_ID_MAX);
		const struct il_peer_conf *op = config_peer(c, name);
		const struct il_origin_conf *oo = config_origin(c, name);
		if (peer && op)
			return config_fail(p, line, "duplicate section [peer %s] (first at line %d)",
					   name, op->line);
		if (!peer && oo)
			return config_fail(p, line, "duplicate section [origin %s] (first at line %d)",
					   name, oo->line);
		/* A peer's keys are in its [peer] section already; a second
		 * set would leave two answers to "whose key signs for X". */
		if (op || oo)
			return config_fail(p, line,
					   "[%s %s]: '%s' is already a [%s] at line %d; an id is a peer or an origin, not both",
					   type, name, name, peer ? "origin" : "peer",
					   peer ? oo->line : op->line);
		return open_section(p, peer ? SECT_PEER : SECT_ORIGIN, name, line);
	}
	if (strcmp(type, "list") == 0) {
		if (!name)
			return config_fail(p, line, "section [list] needs a name: [list NAME]");
		if (!config_valid_list_name(name))
			return config_fail(p, line,
					   "bad list name '%s': use 1-%d of a-z, 0-9, '.', '_' and '-'",
					   name, IL_LIST_MAX);
		const struct il_list_conf *ol = config_list(c, name);
		if (ol)
			return config_fail(p, line, "duplicate section [list %s] (first at line %d)",
					   name, ol->line);
		return open_section(p, SECT_LIST, name, line);
	}
	return config_fail(p, line, "unknown section [%s]: expected relay, peer, origin or list",
			   type);
}

static int parse_line(struct config_parser *p, char *s, int line)
{
	while (is_blank(*s))
		s++;
	if (!*s || *s == '#' || *s == ';')
		return 0;
	if (*s == '[')
		return parse_header(p, s, line);

	char *eq = strchr(s, '=');
	if (!eq)
		return config_fail(p, line, "expected KEY = VALUE or [SECTION], got '%.60s'", s);
	char *ke = eq;
	while (ke > s && is_blank(ke[-1]))
		ke--;
	*ke = 0;
	if (!*s)
		return config_fail(p, line, "missing key before '='");

	/* A comment after a value starts at # or ; after a blank (or right
	 * after '='), so "a#b" stays one value. */
	char *v = eq + 1;
	for (char *q = v; *q; q++) {
		if ((*q == '#' || *q == ';') && (q == v || is_blank(q[-1]))) {
			*q = 0;
			break;
		}
	}
	while (is_blank(*v))
		v++;
	char *ve = v + strlen(v);
	while (ve > v && is_blank(ve[-1]))
		ve--;
	*ve = 0;

	if (p->sect == SECT_NONE)
		return config_fail(p, line, "'%s' is outside any section (start with [relay])", s);
	return config_set_key(p, s, v, line);
}

/* Checks across sections, once every section is known. */
static int check_whole(struct config_parser *p)
{
	struct il_config *c = p->cfg;
	if (!c->relay_line)
		return config_fail(p, 0, "missing required section [relay]");
	for (size_t i = 0; i < c->n_peers; i++) {
		const struct il_peer_conf *pc = &c->peers[i];
		if (strcmp(pc->id, c->id) == 0)
			return config_fail(p, pc->line,
					   "[peer %s]: '%s' is this relay's own id ([relay] line %d)",
					   pc->id, pc->id, c->relay_line);
		for (size_t j = 0; j < pc->n_lists; j++)
			if (!config_list(c, pc->lists[j]))
				return config_fail(p, pc->lists_line,
						   "lists: no [list %s] section in this file",
						   pc->lists[j]);
	}
	/* One listener per address: the second would fail to bind at start
	 * (exit 75, restarted by systemd forever) or at reload. */
	for (size_t i = 0; i < c->n_lists; i++) {
		const struct il_list_conf *l = &c->lists[i];
		if (!l->ingest_target)
			continue;
		if (l->ingest_kind == IL_INGEST_LMTP_UNIX && c->status_socket.s &&
		    strcmp(l->ingest_target, c->status_socket.s) == 0)
			return config_fail(p, l->ingest.line, "ingest: %s is the status_socket",
					   l->ingest_target);
		for (size_t j = 0; j < i; j++) {
			const struct il_list_conf *o = &c->lists[j];
			if (o->ingest_target && o->ingest_kind == l->ingest_kind &&
			    strcmp(o->ingest_target, l->ingest_target) == 0)
				return config_fail(p, l->ingest.line,
						   "ingest: %s is already [list %s]'s (line %d)",
						   l->ingest_target, o->name, o->ingest.line);
		}
	}
	return 0;
}

static int parse_text(struct config_parser *p, char *text, size_t len)
{
	char *s = text, *end = text + len;
	int line = 0, rc;

	while (s < end) {
		line++;
		char *nl = memchr(s, '\n', (size_t)(end - s));
		char *e = nl ? nl : end;
		char *next = nl ? nl + 1 : end;
		if (e > s && e[-1] == '\r')
			e--;
		for (char *q = s; q < e; q++) {
			unsigned char ch = (unsigned char)*q;
			if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				return config_fail(p, line, "control character 0x%02x in line", ch);
		}
		*e = 0;
		rc = parse_line(p, s, line);
		if (rc < 0)
			return rc;
		s = next;
	}
	rc = config_close_section(p);
	if (rc < 0)
		return rc;
	return check_whole(p);
}

/* Absolute folder of the file, symbolic links resolved when it exists. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *d = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	char *r = NULL;
	if (!d)
		return NULL;
	if ((r = realpath(d, NULL)))
		goto out;
	if (d[0] == '/') {
		r = config_val_path("/", d);
	} else {
		char *cwd = getcwd(NULL, 0);
		if (cwd)
			r = config_val_path(cwd, d);
		free(cwd);
	}
out:
	free(d);
	return r;
}

int config_load_buffer(const char *name, const char *buf, size_t len, struct il_config **out,
		       char *err, size_t errlen)
{
	struct config_parser p = { .name = name, .err = err, .errlen = errlen };
	char *text = NULL;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = 0;
	struct il_config *c = calloc(1, sizeof(*c));
	if (!c)
		goto oom;
	p.cfg = c;
	c->retention_days = 30;
	c->max_message_bytes = 1024 * 1024;
	c->hop_limit = IL_DEFAULT_HOP_LIMIT;
	c->envelope_version = 2;
	c->log_level = IL_LOG_INFO;
	if (!(c->path = strdup(name)))
		goto oom;
	if (!(c->dir = dir_of(name))) {
		rc = errno ? -errno : -ENOMEM;
		config_fail(&p, 0, "cannot find the file's folder: %s", il_strerror(rc));
		goto fail;
	}
	if (!(text = malloc(len + 1)))
		goto oom;
	memcpy(text, buf, len);
	text[len] = 0;
	rc = parse_text(&p, text, len);
	if (rc < 0)
		goto fail;
	free(text);
	free(p.hostname);
	*out = c;
	return 0;
oom:
	rc = config_oom(&p, 0);
fail:
	free(text);
	free(p.hostname);
	config_free(c);
	return rc;
}

int config_load(const char *path, struct il_config **out, char *err, size_t errlen)
{
	uint8_t *data;
	size_t len;

	*out = NULL;
	int rc = util_read_file(path, CONFIG_MAX_FILE, &data, &len);
	if (rc < 0) {
		if (err && errlen)
			snprintf(err, errlen, "%s:0: cannot read: %s", path, il_strerror(rc));
		return rc;
	}
	rc = config_load_buffer(path, (const char *)data, len, out, err, errlen);
	free(data);
	return rc;
}

enum file_kind { F_PRIVATE, F_SIGN_KEY, F_PUBLIC, F_CERT };

static int check_file(const struct il_config *c, const char *key, const struct il_cval *cv,
		      enum file_kind kind, char *err, size_t errlen)
{
	char why[256] = "";
	EVP_PKEY *k = NULL;
	int rc;

	switch (kind) {
	case F_PRIVATE:
	case F_SIGN_KEY: rc = keys_load_private(cv->s, &k, why, sizeof(why)); break;
	case F_PUBLIC: rc = keys_load_public(cv->s, &k, why, sizeof(why)); break;
	default: rc = keys_check_cert(cv->s, NULL, why, sizeof(why)); break;
	}
	/* keys_load_private takes any key type, as TLS needs; messages must
	 * be signed with Ed25519 (keys_load_public checks the other end). */
	if (rc == 0 && kind == F_SIGN_KEY && EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		const char *type = EVP_PKEY_get0_type_name(k);
		snprintf(why, sizeof(why), "%s key, signing keys must be Ed25519",
			 type ? type : "unknown");
		rc = IL_EKEY;
	}
	EVP_PKEY_free(k);
	if (rc < 0 && err && errlen) {
		/* keys_* start their reason with the path, which we print anyway. */
		const char *r = why;
		size_t pl = strlen(cv->s);
		if (strncmp(r, cv->s, pl) == 0 && r[pl] == ':' && r[pl + 1] == ' ')
			r += pl + 2;
		snprintf(err, errlen, "%s:%d: %s: %s: %s", c->path, cv->line, key, cv->s,
			 r[0] ? r : il_strerror(rc));
	}
	return rc < 0 ? rc : 0;
}

int config_check_files(const struct il_config *c, char *err, size_t errlen)
{
	int rc;
	if ((rc = check_file(c, "tls_cert", &c->tls_cert, F_CERT, err, errlen)) < 0 ||
	    (rc = check_file(c, "tls_key", &c->tls_key, F_PRIVATE, err, errlen)) < 0 ||
	    (rc = check_file(c, "sign_key", &c->sign_key, F_SIGN_KEY, err, errlen)) < 0)
		return rc;
	for (size_t i = 0; i < c->n_peers; i++) {
		const struct il_peer_conf *pc = &c->peers[i];
		if ((rc = check_file(c, "tls_cert", &pc->tls_cert, F_CERT, err, errlen)) < 0)
			return rc;
		for (size_t j = 0; j < pc->n_sign_pub; j++)
			if ((rc = check_file(c, "sign_pub", &pc->sign_pub[j], F_PUBLIC, err,
					     errlen)) < 0)
				return rc;
	}
	for (size_t i = 0; i < c->n_origins; i++) {
		const struct il_origin_conf *o = &c->origins[i];
		for (size_t j = 0; j < o->n_sign_pub; j++)
			if ((rc = check_file(c, "sign_pub", &o->sign_pub[j], F_PUBLIC, err,
					     errlen)) < 0)
				return rc;
	}
	return 0;
}

const struct il_peer_conf *config_peer(const struct il_config *c, const char *id)
{
	for (size_t i = 0; i < c->n_peers; i++)
		if (strcmp(c->peers[i].id, id) == 0)
			return &c->peers[i];
	return NULL;
}

const struct il_origin_conf *config_origin(const struct il_config *c, const char *id)
{
	for (size_t i = 0; i < c->n_origins; i++)
		if (strcmp(c->origins[i].id, id) == 0)
			return &c->origins[i];
	return NULL;
}

const struct il_list_conf *config_list(const struct il_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_lists; i++)
		if (strcmp(c->lists[i].name, name) == 0)
			return &c->lists[i];
	return NULL;
}

int config_peer_has_list(const struct il_peer_conf *p, const char *list)
{
	if (p->n_lists == 0)
		return 1;
	for (size_t i = 0; i < p->n_lists; i++)
		if (strcmp(p->lists[i], list) == 0)
			return 1;
	return 0;
}

static void free_cvals(struct il_cval *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].s);
	free(v);
}

void config_free(struct il_config *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->dir);
	free(c->listen.s);
	free(c->tls_cert.s);
	free(c->tls_key.s);
	free(c->sign_key.s);
	free(c->data_dir.s);
	free(c->status_socket.s);
	free(c->metrics_listen.s);
	for (size_t i = 0; i < c->n_peers; i++) {
		struct il_peer_conf *pc = &c->peers[i];
		free(pc->url.s);
		free(pc->tls_cert.s);
		free_cvals(pc->sign_pub, pc->n_sign_pub);
		config_strv_free(pc->lists);
	}
	free(c->peers);
	for (size_t i = 0; i < c->n_origins; i++)
		free_cvals(c->origins[i].sign_pub, c->origins[i].n_sign_pub);
	free(c->origins);
	for (size_t i = 0; i < c->n_lists; i++) {
		struct il_list_conf *l = &c->lists[i];
		free(l->deliver.s);
		free(l->deliver_target);
		config_strv_free(l->exec_argv);
		free(l->ingest.s);
		free(l->ingest_target);
		free(l->rcpt);
		free(l->mail_from);
		config_strv_free(l->accept_origins);
	}
	free(c->lists);
	free(c);
}
