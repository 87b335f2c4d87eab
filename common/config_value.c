/* config_value.c — syntax of single configuration values (numbers, host:port,
 * URLs, paths, comma lists, command lines). No FILE:LINE here: callers add it. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_blank(char c) { return c == ' ' || c == '\t'; }

int config_valid_id(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-'))
			return 0;
		if (n >= IL_ID_MAX)
			return 0;
	}
	return n > 0;
}

int config_valid_list_name(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c == '.' || c == '_'))
			return 0;
		if (n >= IL_LIST_MAX)
			return 0;
	}
	/* List names end up in file and folder names: "." and ".." would walk. */
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	return n > 0;
}

int config_valid_addr(const char *s)
{
	const char *at = strrchr(s, '@');
	if (!at || at == s || at[1] == 0)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == '<' || *s == '>' || *s == ',')
			return 0;
	return 1;
}

int config_val_int(const char *s, long long *out)
{
	const char *p = s;
	if (*p == '-')
		p++;
	if (!*p)
		return -EINVAL;
	for (const char *q = p; *q; q++)
		if (!is_digit(*q))
			return -EINVAL;
	errno = 0;
	long long v = strtoll(s, NULL, 10);
	if (errno == ERANGE)
		return -ERANGE;
	*out = v;
	return 0;
}

int config_val_rate(const char *s, double *out)
{
	/* Digits with at most one dot: strtod alone would also take "inf",
	 * "nan" and hex floats, none of which is a rate. */
	const char *p = s;
	int neg = 0, digits = 0, dots = 0;
	if (*p == '-') {
		neg = 1;
		p++;
	}
	for (; *p; p++) {
		if (is_digit(*p))
			digits++;
		else if (*p == '.' && dots++ == 0)
			continue;
		else
			return -EINVAL;
	}
	if (!digits)
		return -EINVAL;
	double v = strtod(s, NULL);
	if (!isfinite(v))
		return -ERANGE;
	if (neg && v != 0)
		return -ERANGE;
	*out = neg ? 0 : v;
	return 0;
}

/* RFC 1123 host name: dot-separated labels of letters, digits and '-', no
 * label empty, longer than 63 or starting/ending with '-'. */
static int valid_hostname(const char *s, size_t len)
{
	if (len == 0 || len > 253)
		return 0;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-'))
			return 0;
		if (c == '-' && label == 0)
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && s[len - 1] != '-';
}

int config_val_hostport(const char *s, char *host, size_t hostlen, uint16_t *port,
			const char **why)
{
	const char *h, *colon;
	size_t hl;
	char tmp[256];

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close) {
			*why = "missing ']' after the IPv6 address";
			return -EINVAL;
		}
		h = s + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
		if (*colon != ':') {
			*why = "expected :PORT after the host";
			return -EINVAL;
		}
		if (hl == 0 || hl >= sizeof(tmp)) {
			*why = "bad IPv6 address";
			return -EINVAL;
		}
		memcpy(tmp, h, hl);
		tmp[hl] = 0;
		struct in6_addr a6;
		if (inet_pton(AF_INET6, tmp, &a6) != 1) {
			*why = "bad IPv6 address";
			return -EINVAL;
		}
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			*why = "expected HOST:PORT";
			return -EINVAL;
		}
		h = s;
		hl = (size_t)(colon - s);
		if (memchr(h, ':', hl)) {
			*why = "an IPv6 address goes in brackets: [ADDR]:PORT";
			return -EINVAL;
		}
		if (hl == 0) {
			*why = "empty host";
			return -EINVAL;
		}
		if (hl >= sizeof(tmp)) {
			*why = "host name too long";
			return -EINVAL;
		}
		memcpy(tmp, h, hl);
		tmp[hl] = 0;
		/* All digits and dots: it can only mean an IPv4 address. */
		if (strspn(tmp, "0123456789.") == hl) {
			struct in_addr a4;
			if (inet_pton(AF_INET, tmp, &a4) != 1) {
				*why = "bad IPv4 address";
				return -EINVAL;
			}
		} else if (!valid_hostname(tmp, hl)) {
			*why = "bad host name";
			return -EINVAL;
		}
	}

	const char *ps = colon + 1;
	size_t pl = strlen(ps);
	if (pl == 0 || pl > 5 || strspn(ps, "0123456789") != pl) {
		*why = "port must be a number 1..65535";
		return -EINVAL;
	}
	long v = strtol(ps, NULL, 10);
	if (v < 1 || v > 65535) {
		*why = "port must be a number 1..65535";
		return -ERANGE;
	}
	if (host) {
		if (hl >= hostlen) {
			*why = "host name too long";
			return -ENAMETOOLONG;
		}
		memcpy(host, h, hl);
		host[hl] = 0;
	}
	if (port)
		*port = (uint16_t)v;
	return 0;
}

int config_split_hostport(const char *hostport, char *host, size_t hostlen, uint16_t *port)
{
	const char *why;
	return config_val_hostport(hostport, host, hostlen, port, &why);
}

int config_val_url(const char *s, const char *scheme, const char **why)
{
	size_t sl = strlen(scheme);
	if (strncmp(s, scheme, sl) != 0 || strncmp(s + sl, "://", 3) != 0) {
		*why = "bad URL scheme";
		return -EPROTONOSUPPORT;
	}
	return config_val_hostport(s + sl + 3, NULL, 0, NULL, why);
}

char *config_val_path(const char *dir, const char *s)
{
	size_t dl = strlen(dir), sl = strlen(s);
	char *raw = malloc(dl + sl + 2);
	if (!raw)
		return NULL;
	if (s[0] == '/') {
		memcpy(raw, s, sl + 1);
	} else {
		memcpy(raw, dir, dl);
		raw[dl] = '/';
		memcpy(raw + dl + 1, s, sl + 1);
	}
	/* Drop empty and "." parts in place; ".." stays, since only the file
	 * system knows what it means behind a symbolic link. */
	char *w = raw;
	const char *r = raw;
	while (*r) {
		while (*r == '/')
			r++;
		const char *end = strchrnul(r, '/');
		size_t n = (size_t)(end - r);
		if (n == 0 || (n == 1 && r[0] == '.')) {
			r = end;
			continue;
		}
		*w++ = '/';
		memmove(w, r, n);
		w += n;
		r = end;
	}
	if (w == raw)
		*w++ = '/';
	*w = 0;
	return raw;
}

void config_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* Append a copy of s[0..len) to the NULL-terminated vector *v of *n items. */
static int strv_push(char ***v, size_t *n, const char *s, size_t len)
{
	char **nv = realloc(*v, (*n + 2) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	char *c = strndup(s, len);
	if (!c) {
		nv[*n] = NULL;
		return -ENOMEM;
	}
	nv[(*n)++] = c;
	nv[*n] = NULL;
	return 0;
}

int config_val_list(const char *s, char ***out, size_t *n)
{
	char **v = NULL;
	size_t count = 0;
	int rc;

	for (;;) {
		const char *end = strchrnul(s, ',');
		const char *a = s, *b = end;
		while (a < b && is_blank(*a))
			a++;
		while (b > a && is_blank(b[-1]))
			b--;
		if (a == b) {
			rc = -EINVAL;
			goto fail;
		}
		rc = strv_push(&v, &count, a, (size_t)(b - a));
		if (rc < 0)
			goto fail;
		if (!*end)
			break;
		s = end + 1;
	}
	*out = v;
	*n = count;
	return 0;
fail:
	config_strv_free(v);
	return rc;
}

int config_val_argv(const char *s, char ***out, const char **why)
{
	char **v = NULL;
	size_t count = 0;
	size_t len = strlen(s);
	char *word = malloc(len + 1);
	int rc;

	if (!word)
		return -ENOMEM;
	const char *p = s;
	for (;;) {
		while (is_blank(*p))
			p++;
		if (!*p)
			break;
		/* One word runs to the next blank outside quotes; quotes may
		 * sit anywhere in it (a"b c" is `ab c`), "" is an empty word. */
		size_t wl = 0;
		int quoted = 0;
		for (; *p && (quoted || !is_blank(*p)); p++) {
			if (*p == '"')
				quoted = !quoted;
			else
				word[wl++] = *p;
		}
		if (quoted) {
			*why = "unterminated quote";
			rc = -EINVAL;
			goto fail;
		}
		rc = strv_push(&v, &count, word, wl);
		if (rc < 0)
			goto fail;
	}
	if (count == 0) {
		*why = "empty command";
		rc = -EINVAL;
		goto fail;
	}
	if (v[0][0] != '/') {
		*why = "the program must be an absolute path";
		rc = -EINVAL;
		goto fail;
	}
	free(word);
	*out = v;
	return 0;
fail:
	free(word);
	config_strv_free(v);
	return rc;
}
