/*
 * config.h — the relay's configuration file (INI).
 *
 * config_load() parses and validates the file; it opens no key. Paths are
 * made absolute against the config file's folder. config_check_files() then
 * opens every key and certificate named, so `interlistctl check` and the
 * daemon report the same `FILE:LINE: message` errors. One config object owns
 * all its strings; config_free() releases everything.
 */
#ifndef IL_CONFIG_H
#define IL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "il/tlp.h"

#define IL_ID_MAX 32            /* relay id: [a-z0-9-]{1,32} */
#define IL_LIST_MAX 64          /* list name: [a-z0-9-._]{1,64} */
#define IL_DEFAULT_CONFIG "/etc/interlist/interlist.conf"
#define IL_DEFAULT_HOP_LIMIT 16
#define IL_MAX_HOP_LIMIT 32
#define IL_EX_CONFIG 78         /* sysexits EX_CONFIG */
#define IL_EX_IOERR 74          /* sysexits EX_IOERR: the store's disk failed a sync */

/* A value that came from the file, with the line it came from, so that a
 * later check (opening a key, say) can still name FILE:LINE. */
struct il_cval {
	char *s;
	int line;
};

enum il_log_level { IL_LOG_ERROR = 0, IL_LOG_WARN, IL_LOG_INFO, IL_LOG_DEBUG };

enum il_deliver_kind {
	IL_DELIVER_NONE = 0,    /* transit only (a hub relay) */
	IL_DELIVER_MAILDIR,     /* target: absolute folder */
	IL_DELIVER_SMTP,        /* target: "host:port" */
	IL_DELIVER_EXEC,        /* target: the command line, split into argv */
};

enum il_smtp_tls { IL_SMTP_TLS_STARTTLS = 0, IL_SMTP_TLS_OFF, IL_SMTP_TLS_REQUIRED };

enum il_ingest_kind { IL_INGEST_NONE = 0, IL_INGEST_LMTP_TCP, IL_INGEST_LMTP_UNIX };

struct il_peer_conf {
	char id[IL_ID_MAX + 1];
	int line;                       /* line of the [peer ID] header */
	struct il_cval url;             /* .s NULL: the peer dials us */
	struct il_cval tls_cert;        /* absolute path, pinned certificate */
	struct il_cval *sign_pub;       /* >= 1; several during a key rotation */
	size_t n_sign_pub;
	char **lists;                   /* NULL/0: every list we carry; else NULL-terminated */
	size_t n_lists;
	int lists_line;                 /* line of `lists`, 0 when unset */
	enum il_tlp max_tlp;            /* default amber */
	double max_rate;                /* messages/s, 0 = no limit */
};

struct il_origin_conf {
	char id[IL_ID_MAX + 1];
	int line;
	struct il_cval *sign_pub;
	size_t n_sign_pub;
};

struct il_list_conf {
	char name[IL_LIST_MAX + 1];
	int line;
	struct il_cval deliver;         /* raw value, NULL when transit only */
	enum il_deliver_kind deliver_kind;
	char *deliver_target;           /* maildir: absolute path; smtp: host:port */
	char **exec_argv;               /* exec: NULL-terminated argv */
	enum il_tlp default_tlp;        /* default amber */
	struct il_cval ingest;          /* raw value or NULL */
	enum il_ingest_kind ingest_kind;
	char *ingest_target;            /* host:port or absolute socket path */
	char *rcpt;                     /* smtp: envelope recipient */
	char *mail_from;                /* smtp: default interlist@HOSTNAME */
	enum il_smtp_tls smtp_tls;
	int exec_timeout_s;             /* default 60 */
	int max_deliveries;             /* concurrent deliveries, default 4 */
	char **accept_origins;          /* NULL/0: any origin whose key we know */
	size_t n_accept_origins;
};

struct il_config {
	char *path;                     /* as given by the caller, used in messages */
	char *dir;                      /* absolute folder of the file */
	int relay_line;                 /* line of [relay] */
	char id[IL_ID_MAX + 1];
	struct il_cval listen;          /* tls+tcp://host:port or NULL */
	struct il_cval tls_cert, tls_key, sign_key;
	struct il_cval data_dir;
	struct il_cval status_socket;   /* default data_dir/status.sock */
	struct il_cval metrics_listen;  /* http://host:port or NULL */
	int retention_days;             /* default 30 */
	size_t max_message_bytes;       /* default 1 MiB */
	int hop_limit;                  /* default 16 */
	int envelope_version;           /* what local posts are signed as; default 2 */
	enum il_log_level log_level;    /* default info */

	struct il_peer_conf *peers;
	size_t n_peers;
	struct il_origin_conf *origins;
	size_t n_origins;
	struct il_list_conf *lists;
	size_t n_lists;
};

/*
 * Parse the file at path. On success *out owns a new config. On failure
 * returns a negative code and writes "PATH:LINE: what is wrong" (PATH as the
 * caller gave it) into err; a missing key names its section's line.
 */
int config_load(const char *path, struct il_config **out, char *err, size_t errlen);

/*
 * Parse configuration text (len bytes, need not end in NUL) as if it had been
 * read from the file name: name is the FILE of messages and its folder
 * anchors relative paths; nothing is read from disk. Same result as
 * config_load(). The fuzz target and tests use it.
 */
int config_load_buffer(const char *name, const char *buf, size_t len, struct il_config **out,
		       char *err, size_t errlen);

/*
 * Open every key and certificate the config names (our TLS pair, our signing
 * key, each peer's certificate and public keys, each origin's keys) and check
 * private key permissions (no group/other access). Same error form.
 */
int config_check_files(const struct il_config *cfg, char *err, size_t errlen);

void config_free(struct il_config *cfg);

/* Lookups; NULL when absent. */
const struct il_peer_conf *config_peer(const struct il_config *cfg, const char *id);
const struct il_origin_conf *config_origin(const struct il_config *cfg, const char *id);
const struct il_list_conf *config_list(const struct il_config *cfg, const char *name);

/* Does this peer exchange that list (its `lists`, or all when unset)? */
int config_peer_has_list(const struct il_peer_conf *p, const char *list);

/* Valid relay id: [a-z0-9-]{1,32}. */
int config_valid_id(const char *s);

/*
 * Split "HOST:PORT" (a deliver smtp or ingest lmtp target, or what follows
 * "tls+tcp://"): host gets the name or address without IPv6 brackets,
 * *port 1..65535. 0, or -EINVAL/-ERANGE for a value config_load() would
 * refuse, -ENAMETOOLONG when host does not fit hostlen (256 always does).
 */
int config_split_hostport(const char *hostport, char *host, size_t hostlen, uint16_t *port);

#endif
