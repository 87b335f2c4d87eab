/*
 * config_int.h — internals shared by the config module's files; nothing
 * outside common/config*.c includes this.
 *
 * config.c reads lines and sections, config_keys.c gives each key its
 * meaning, config_value.c checks the syntax of single values. A failing
 * helper returns a negative code; only the parser (which knows FILE:LINE)
 * writes the message.
 */
#ifndef IL_CONFIG_INT_H
#define IL_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "il/config.h"

/* The biggest configuration file we read; a real one is a few KiB. */
#define CONFIG_MAX_FILE (1024 * 1024)

/* sun_path is 108 bytes on Linux, one of them the NUL. */
#define CONFIG_UNIX_PATH_MAX 107

enum config_sect { SECT_NONE = 0, SECT_RELAY, SECT_PEER, SECT_ORIGIN, SECT_LIST };

/* Keys per section fit a bitmask of seen keys. */
#define CONFIG_MAX_KEYS 32

struct config_parser {
	struct il_config *cfg;
	const char *name;               /* the file as the caller named it */
	char *err;
	size_t errlen;
	enum config_sect sect;
	size_t idx;                     /* index into peers/origins/lists */
	int sect_line;
	uint32_t seen;                  /* keys set in the current section */
	int seen_line[CONFIG_MAX_KEYS];
	char *hostname;                 /* for mail_from, looked up once */
};

/* "FILE:LINE: message" into the parser's err; returns IL_ECONFIG. */
int config_fail(struct config_parser *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Out of memory at that line: same form, returns -ENOMEM. */
int config_oom(struct config_parser *p, int line);
/* "[peer alpha]" for the current section, in a static-free caller buffer. */
const char *config_sect_label(const struct config_parser *p, char *buf, size_t len);

/* config_keys.c: set key to val (already trimmed, non-empty) in the
 * current section; check a section once it ends. */
int config_set_key(struct config_parser *p, const char *key, const char *val, int line);
int config_close_section(struct config_parser *p);

/* config_value.c */
int config_val_int(const char *s, long long *out);            /* -EINVAL / -ERANGE */
int config_val_rate(const char *s, double *out);              /* -EINVAL / -ERANGE */
int config_val_hostport(const char *s, char *host, size_t hostlen, uint16_t *port,
			const char **why);
/* s must be SCHEME://HOST:PORT with nothing after the port; another scheme
 * is -EPROTONOSUPPORT. */
int config_val_url(const char *s, const char *scheme, const char **why);
/* dir + "/" + s (or s when absolute), with "." and empty parts removed;
 * malloc'd, NULL when out of memory. */
char *config_val_path(const char *dir, const char *s);
/* Split a comma list; items trimmed, none empty (-EINVAL). *out is a
 * malloc'd NULL-terminated vector. */
int config_val_list(const char *s, char ***out, size_t *n);
/* Split a command line on blanks, "double quotes" group; no other escapes. */
int config_val_argv(const char *s, char ***out, const char **why);
int config_valid_list_name(const char *s);
/* Looks like local@domain: no blanks, no <>, an @ inside. */
int config_valid_addr(const char *s);
void config_strv_free(char **v);

#endif
