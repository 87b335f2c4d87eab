/*
 * ctl_human.c — `interlistctl status --human`: the status socket's JSON
 * answer as tables for a terminal (relay, peers, lists, non-zero counters).
 *
 * The JSON reader here is deliberately small: it reads the daemon's own
 * answer (at most CTL_ANSWER_MAX bytes, nesting CTL_JSON_DEPTH deep), builds
 * a tree and frees it; no streaming, no number beyond long long or double.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "il/error.h"
#include "il/util.h"
#include "ctl.h"

#define CTL_JSON_DEPTH 32
#define CTL_HUMAN_MAX (64u << 20)       /* the same bound as any socket answer */
#define CELL_MAX 64                     /* ids are <= 32, list names <= 64 */

/* ---- a tiny JSON reader ---- */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	enum jtype t;
	int b;
	long long i;                    /* J_NUM: integral part */
	char *s;                        /* J_STR */
	struct jv *items;               /* J_ARR, J_OBJ: values */
	char **keys;                    /* J_OBJ */
	size_t n;
};

struct jp {
	const char *p, *end;
	int depth;
};

static void jv_free(struct jv *v)
{
	free(v->s);
	for (size_t i = 0; i < v->n; i++) {
		jv_free(&v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	memset(v, 0, sizeof(*v));
}

static void skip_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int lit(struct jp *j, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n))
		return -EINVAL;
	j->p += n;
	return 0;
}

static int hex4(const char *p, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -EINVAL;
	}
	*out = v;
	return 0;
}

/* A string token into a malloc'd UTF-8 string. */
static int parse_str(struct jp *j, char **out)
{
	if (j->p >= j->end || *j->p != '"')
		return -EINVAL;
	j->p++;
	/* Decoded is never longer than encoded (\uXXXX: 6 bytes in, <= 4 out). */
	const char *q = j->p;
	while (q < j->end && *q != '"')
		q += *q == '\\' ? 2 : 1;
	if (q >= j->end)
		return -EINVAL;
	char *s = malloc((size_t)(q - j->p) + 1), *w = s;
	if (!s)
		return -ENOMEM;
	while (*j->p != '"') {
		unsigned char c = (unsigned char)*j->p++;
		if (c != '\\') {
			*w++ = (char)c;
			continue;
		}
		char e = *j->p++;
		unsigned u;
		switch (e) {
		case '"': case '\\': case '/': *w++ = e; break;
		case 'b': *w++ = '\b'; break;
		case 'f': *w++ = '\f'; break;
		case 'n': *w++ = '\n'; break;
		case 'r': *w++ = '\r'; break;
		case 't': *w++ = '\t'; break;
		case 'u':
			if (j->end - j->p < 4 || hex4(j->p, &u) < 0)
				goto bad;
			j->p += 4;
			/* Surrogates would need a pair: only the daemon's own \u00XX
			 * escapes of control bytes matter here, show others as '?'. */
			if (u >= 0xd800 && u <= 0xdfff)
				*w++ = '?';
			else if (u < 0x80)
				*w++ = (char)u;
			else if (u < 0x800) {
				*w++ = (char)(0xc0 | u >> 6);
				*w++ = (char)(0x80 | (u & 0x3f));
			} else {
				*w++ = (char)(0xe0 | u >> 12);
				*w++ = (char)(0x80 | ((u >> 6) & 0x3f));
				*w++ = (char)(0x80 | (u & 0x3f));
			}
			break;
		default:
			goto bad;
		}
	}
	j->p++;
	*w = 0;
	*out = s;
	return 0;
bad:
	free(s);
	return -EINVAL;
}

static int parse_value(struct jp *j, struct jv *v);

/* Append one (key, value) to an array or object being built. */
static int push(struct jv *v, char *key, struct jv *item)
{
	struct jv *ni = realloc(v->items, (v->n + 1) * sizeof(*ni));
	if (!ni)
		return -ENOMEM;
	v->items = ni;
	if (v->t == J_OBJ) {
		char **nk = realloc(v->keys, (v->n + 1) * sizeof(*nk));
		if (!nk)
			return -ENOMEM;
		v->keys = nk;
		v->keys[v->n] = key;
	}
	v->items[v->n++] = *item;
	return 0;
}

static int parse_container(struct jp *j, struct jv *v, char close)
{
	int obj = close == '}';
	v->t = obj ? J_OBJ : J_ARR;
	if (++j->depth > CTL_JSON_DEPTH)
		return -EINVAL;
	j->p++;
	skip_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		j->depth--;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		struct jv item = { 0 };
		int e;
		skip_ws(j);
		if (obj) {
			if ((e = parse_str(j, &key)) < 0)
				return e;
			skip_ws(j);
			if (j->p >= j->end || *j->p++ != ':') {
				free(key);
				return -EINVAL;
			}
		}
		if ((e = parse_value(j, &item)) < 0 || (e = push(v, key, &item)) < 0) {
			free(key);
			jv_free(&item);
			return e;
		}
		skip_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == close) {
			j->p++;
			j->depth--;
			return 0;
		}
		return -EINVAL;
	}
}

static int parse_value(struct jp *j, struct jv *v)
{
	skip_ws(j);
	if (j->p >= j->end)
		return -EINVAL;
	switch (*j->p) {
	case '{': return parse_container(j, v, '}');
	case '[': return parse_container(j, v, ']');
	case '"': v->t = J_STR; return parse_str(j, &v->s);
	case 't': v->t = J_BOOL; v->b = 1; return lit(j, "true");
	case 'f': v->t = J_BOOL; return lit(j, "false");
	case 'n': v->t = J_NULL; return lit(j, "null");
	}
	/* A number: its integral part is all this table shows. */
	char buf[64];
	size_t n = 0;
	while (j->p + n < j->end && n < sizeof(buf) - 1 && strchr("+-0123456789.eE", j->p[n]))
		n++;
	if (n == 0 || n == sizeof(buf) - 1)
		return -EINVAL;
	memcpy(buf, j->p, n);
	buf[n] = 0;
	char *endp;
	errno = 0;
	double d = strtod(buf, &endp);
	if (*endp || errno)
		return -EINVAL;
	long long ll = strtoll(buf, &endp, 10);
	v->t = J_NUM;
	v->i = *endp ? (long long)d : ll;
	j->p += n;
	return 0;
}

static int json_parse(const char *s, size_t len, struct jv *out)
{
	struct jp j = { .p = s, .end = s + len };
	memset(out, 0, sizeof(*out));
	int e = parse_value(&j, out);
	if (e == 0) {
		skip_ws(&j);
		if (j.p != j.end)
			e = -EINVAL;
	}
	if (e < 0)
		jv_free(out);
	return e;
}

static const struct jv *jget(const struct jv *o, const char *key)
{
	if (!o || o->t != J_OBJ)
		return NULL;
	for (size_t i = 0; i < o->n; i++)
		if (!strcmp(o->keys[i], key))
			return &o->items[i];
	return NULL;
}

static long long jint(const struct jv *o, const char *key)
{
	const struct jv *v = jget(o, key);
	return v && v->t == J_NUM ? v->i : 0;
}

/* ---- rendering ---- */

/* Copy for a terminal: control bytes (escape sequences) become '?'. */
static void cell_str(char *out, const char *s)
{
	size_t i = 0;
	for (; s && s[i] && i < CELL_MAX - 1; i++)
		out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	out[i] = 0;
}

static void cell_fmt_str(char *out, const struct jv *o, const char *key)
{
	const struct jv *v = jget(o, key);
	cell_str(out, v && v->t == J_STR ? v->s : "?");
}

static void cell_int(char *out, const struct jv *o, const char *key)
{
	snprintf(out, CELL_MAX, "%lld", jint(o, key));
}

static void span(char *out, size_t outlen, long long s)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(out, outlen, "%llds", s);
	else if (s < 3600)
		snprintf(out, outlen, "%lldm %llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, outlen, "%lldh %lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(out, outlen, "%lldd %lldh", s / 86400, s % 86400 / 3600);
}

/* "12s ago", "5m ago", "3h ago", "2d ago", or "never". */
static void ago(char *out, const struct jv *v, long long now)
{
	if (!v || v->t != J_NUM) {
		snprintf(out, CELL_MAX, "never");
		return;
	}
	long long s = now - v->i;
	if (s < 0)
		s = 0;              /* the daemon's clock is a little ahead */
	if (s < 60)
		snprintf(out, CELL_MAX, "%llds ago", s);
	else if (s < 3600)
		snprintf(out, CELL_MAX, "%lldm ago", s / 60);
	else if (s < 86400)
		snprintf(out, CELL_MAX, "%lldh ago", s / 3600);
	else
		snprintf(out, CELL_MAX, "%lldd ago", s / 86400);
}

/* cells: (rows + 1) x ncol, row 0 the heading; numeric columns (right[c])
 * are right-aligned, two spaces between columns. */
static void table(FILE *f, char (*cells)[CELL_MAX], size_t rows, size_t ncol, const int *right)
{
	size_t w[16] = { 0 };
	for (size_t r = 0; r <= rows; r++)
		for (size_t c = 0; c < ncol; c++) {
			size_t l = strlen(cells[r * ncol + c]);
			if (l > w[c])
				w[c] = l;
		}
	for (size_t r = 0; r <= rows; r++) {
		for (size_t c = 0; c < ncol; c++) {
			const char *s = cells[r * ncol + c];
			int last = c + 1 == ncol;
			/* No padding after the last column: no trailing blanks. */
			if (right[c])
				fprintf(f, "%*s", (int)w[c], s);
			else
				fprintf(f, "%-*s", last ? 0 : (int)w[c], s);
			fputs(last ? "\n" : "  ", f);
		}
	}
}

/* A table of rows + 1 lines of ncol cells, the first line holding head. */
static char (*table_new(const char *const *head, size_t ncol, size_t rows))[CELL_MAX]
{
	char (*cells)[CELL_MAX] = calloc((rows + 1) * ncol, CELL_MAX);
	for (size_t c = 0; cells && c < ncol; c++)
		cell_str(cells[c], head[c]);
	return cells;
}

static int render_peers(FILE *f, const struct jv *peers, long long now)
{
	static const char *head[] = { "PEER", "CONNECTED", "QUEUED", "SENT", "RECEIVED",
				      "REJECTED", "LAST SEEN" };
	static const int right[] = { 0, 0, 1, 1, 1, 1, 0 };
	const size_t ncol = 7;
	size_t rows = peers && peers->t == J_ARR ? peers->n : 0;
	if (rows == 0) {
		fprintf(f, "peers: none configured\n");
		return 0;
	}
	char (*cells)[CELL_MAX] = table_new(head, ncol, rows);
	if (!cells)
		return -ENOMEM;
	for (size_t r = 0; r < rows; r++) {
		const struct jv *p = &peers->items[r];
		char (*row)[CELL_MAX] = cells + (r + 1) * ncol;
		const struct jv *conn = jget(p, "connected");
		cell_fmt_str(row[0], p, "id");
		cell_str(row[1], conn && conn->t == J_BOOL && conn->b ? "yes" : "no");
		cell_int(row[2], p, "queued");
		cell_int(row[3], p, "sent");
		cell_int(row[4], p, "received");
		cell_int(row[5], p, "rejected");
		ago(row[6], jget(p, "last_seen"), now);
	}
	table(f, cells, rows, ncol, right);
	free(cells);
	return 0;
}

static int render_lists(FILE *f, const struct jv *lists)
{
	static const char *head[] = { "LIST", "INGESTED", "DELIVERED", "PENDING", "FAILED" };
	static const int right[] = { 0, 1, 1, 1, 1 };
	const size_t ncol = 5;
	size_t rows = lists && lists->t == J_ARR ? lists->n : 0;
	if (rows == 0) {
		fprintf(f, "lists: none configured\n");
		return 0;
	}
	char (*cells)[CELL_MAX] = table_new(head, ncol, rows);
	if (!cells)
		return -ENOMEM;
	for (size_t r = 0; r < rows; r++) {
		const struct jv *l = &lists->items[r];
		char (*row)[CELL_MAX] = cells + (r + 1) * ncol;
		cell_fmt_str(row[0], l, "name");
		cell_int(row[1], l, "ingested");
		cell_int(row[2], l, "delivered");
		cell_int(row[3], l, "pending");
		cell_int(row[4], l, "failed");
	}
	table(f, cells, rows, ncol, right);
	free(cells);
	return 0;
}

static int render_counters(FILE *f, const struct jv *counters)
{
	size_t nz = 0, rows = 0;
	for (size_t i = 0; counters && counters->t == J_OBJ && i < counters->n; i++)
		nz += counters->items[i].t == J_NUM && counters->items[i].i != 0;
	if (nz == 0) {
		fprintf(f, "counters: all zero\n");
		return 0;
	}
	static const int right[] = { 0, 1 };
	static const char *head[] = { "COUNTER", "VALUE" };
	char (*cells)[CELL_MAX] = table_new(head, 2, nz);
	if (!cells)
		return -ENOMEM;
	for (size_t i = 0; i < counters->n; i++) {
		const struct jv *v = &counters->items[i];
		if (v->t != J_NUM || v->i == 0)
			continue;
		rows++;
		cell_str(cells[rows * 2], counters->keys[i]);
		snprintf(cells[rows * 2 + 1], CELL_MAX, "%lld", v->i);
	}
	table(f, cells, rows, 2, right);
	free(cells);
	return 0;
}

/* The status JSON as tables on f. 0, or a negative code for an answer that
 * is not the status JSON. */
static int render_status(FILE *f, const char *json, size_t len)
{
	struct jv root;
	char id[CELL_MAX], ver[CELL_MAX], up[32];
	int e = json_parse(json, len, &root);
	if (e < 0)
		return e;
	if (root.t != J_OBJ || !jget(&root, "id")) {
		jv_free(&root);
		return -EINVAL;
	}
	long long now = (long long)time(NULL);
	cell_fmt_str(id, &root, "id");
	cell_fmt_str(ver, &root, "version");
	span(up, sizeof(up), jint(&root, "uptime_s"));
	fprintf(f, "relay %s  version %s  up %s\n\n", id, ver, up);
	if ((e = render_peers(f, jget(&root, "peers"), now)) == 0) {
		fputc('\n', f);
		e = render_lists(f, jget(&root, "lists"));
	}
	if (e == 0) {
		fputc('\n', f);
		e = render_counters(f, jget(&root, "counters"));
	}
	jv_free(&root);
	return e;
}

/* ctl_command prints the answer on stdout: point stdout at a temporary
 * file for the call, so the socket exchange, its errors and exit codes stay
 * in one place (ctl_socket.c). */
static int capture_command(const struct ctl_opts *o, int argc, char **argv, uint8_t **out,
			   size_t *len)
{
	FILE *tmp = tmpfile();
	if (!tmp) {
		fprintf(stderr, "interlistctl: temporary file: %s\n", strerror(errno));
		return EX_SOFTWARE_;
	}
	fflush(stdout);
	int saved = dup(STDOUT_FILENO);
	if (saved < 0 || dup2(fileno(tmp), STDOUT_FILENO) < 0) {
		fprintf(stderr, "interlistctl: redirecting output: %s\n", strerror(errno));
		if (saved >= 0)
			close(saved);
		fclose(tmp);
		return EX_SOFTWARE_;
	}
	int rc = ctl_command(o, argc, argv);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	if (rc == 0) {
		int e = fseek(tmp, 0, SEEK_SET) < 0 ? -errno
						     : util_read_fd(fileno(tmp), CTL_HUMAN_MAX, out, len);
		if (e < 0) {
			fprintf(stderr, "interlistctl: reading the answer: %s\n", il_strerror(e));
			rc = EX_SOFTWARE_;
		}
	}
	fclose(tmp);
	return rc;
}

int ctl_status(const struct ctl_opts *o, int argc, char **argv)
{
	int human = o->human;
	for (int i = 1; i < argc; i++)
		human |= !strcmp(argv[i], "--human");
	if (!human)
		return ctl_command(o, argc, argv);
	uint8_t *ans = NULL;
	size_t len = 0;
	int rc = capture_command(o, argc, argv, &ans, &len);
	if (rc)
		return rc;
	if (render_status(stdout, (const char *)ans, len) < 0) {
		fprintf(stderr, "interlistctl: the daemon's status answer is not the expected JSON\n");
		rc = EX_SOFTWARE_;
	}
	free(ans);
	return rc;
}
