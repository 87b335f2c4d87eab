/* Unit tests for the configuration file: real files in a temporary folder,
 * exact FILE:LINE: prefixes, defaults, and config_check_files() with keys
 * made by keys_generate(). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "il/config.h"
#include "il/crypto.h"
#include "il/error.h"

#define ERRLEN 512

/* Six lines: whatever a test appends starts at line 7. */
#define RELAY                                                                        \
	"[relay]\n"                                                                  \
	"id = alpha\n"                                                               \
	"tls_cert = alpha.tls.crt\n"                                                 \
	"tls_key = alpha.tls.key\n"                                                  \
	"sign_key = alpha.sign.key\n"                                                \
	"data_dir = data\n"

static char dir[PATH_MAX];      /* realpath of the temporary folder */
static char cfgpath[PATH_MAX + 16];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

static int load(const char *text, struct il_config **c, char *err)
{
	write_file(cfgpath, text);
	return config_load(cfgpath, c, err, ERRLEN);
}

/* The load fails with IL_ECONFIG, err starts "cfgpath:line: " and names needle. */
static void expect_err(int at, const char *text, int line, const char *needle)
{
	struct il_config *c = (struct il_config *)1;
	char err[ERRLEN] = "", prefix[PATH_MAX + 40];
	int rc = load(text, &c, err);
	snprintf(prefix, sizeof(prefix), "%s:%d: ", cfgpath, line);
	int ok = rc == IL_ECONFIG && c == NULL && strncmp(err, prefix, strlen(prefix)) == 0 &&
		 strstr(err, needle) != NULL;
	CHECK(ok);
	if (!ok)
		fprintf(stderr, "  test at line %d: rc=%d err=\"%s\" want \"%s...%s\"\n", at, rc,
			err, prefix, needle);
	if (rc == 0)
		config_free(c);
}
#define EXPECT_ERR(text, line, needle) expect_err(__LINE__, text, line, needle)

/* text with the first old replaced by new; malloc'd. */
static char *replace(const char *text, const char *old, const char *new)
{
	const char *at = strstr(text, old);
	if (!at) {
		fprintf(stderr, "replace: '%s' not in text\n", old);
		exit(2);
	}
	size_t pre = (size_t)(at - text), ol = strlen(old), nl = strlen(new);
	char *r = malloc(strlen(text) - ol + nl + 1);
	if (!r)
		exit(2);
	memcpy(r, text, pre);
	memcpy(r + pre, new, nl);
	strcpy(r + pre + nl, at + ol);
	return r;
}

static char *in_dir(const char *name)
{
	static char buf[4][PATH_MAX + 64];
	static int i;
	char *b = buf[i++ % 4];
	snprintf(b, sizeof(buf[0]), "%s/%s", dir, name);
	return b;
}

static void test_full(void)
{
	const char *text =
		"# interlist test configuration\n"                       /* 1 */
		"[relay]\n"                                              /* 2 */
		"id = alpha\n"
		"listen = tls+tcp://[::1]:7400\n"
		"tls_cert = keys/alpha.tls.crt\n"                        /* 5 */
		"tls_key = ./keys//alpha.tls.key\n"
		"sign_key = /etc/interlist/alpha.sign.key\n"
		"data_dir = data/\n"
		"status_socket = run/st.sock\n"
		"retention_days = 90\n"                                  /* 10 */
		"max_message_bytes = 2097152\n"
		"hop_limit = 8\n"
		"log_level = debug\n"
		"metrics_listen = http://127.0.0.1:9100\n"
		"\n"                                                     /* 15 */
		"[peer beta]\n"
		"url = tls+tcp://beta.example.org:7400\n"
		"tls_cert = peers/beta.crt\n"
		"sign_pub = peers/beta.pub\n"
		"lists = incidents, contacts\n"                          /* 20 */
		"max_tlp = amber+strict\n"
		"max_rate = 2.5\n"
		"\n"
		"[origin gamma]\n"
		"sign_pub = origins/gamma.pub\n"                         /* 25 */
		"\n"
		"[list incidents]\n"
		"deliver = smtp://mail.example.org:25\n"
		"default_tlp = green\n"
		"ingest = lmtp://127.0.0.1:2424\n"                       /* 30 */
		"rcpt = incidents@example.org\n"
		"mail_from = relay@example.org\n"
		"smtp_tls = required\n"
		"exec_timeout = 30\n"
		"max_deliveries = 8\n"                                   /* 35 */
		"accept_origins = gamma, delta\n"
		"\n"
		"[list contacts]\n"
		"deliver = maildir:mail/contacts\n"
		"ingest = lmtp:unix:run/lmtp.sock\n"                     /* 40 */
		"smtp_tls = off\n"
		"[list hooks.v2]\n"
		"deliver = exec:/usr/local/bin/hook --to ops\n";
	struct il_config *c = NULL;
	char err[ERRLEN] = "";
	int rc = load(text, &c, err);
	CHECK_EQ(rc, 0);
	if (rc != 0) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK_STR(c->path, cfgpath);
	CHECK_STR(c->dir, dir);
	CHECK_EQ(c->relay_line, 2);
	CHECK_STR(c->id, "alpha");
	CHECK_STR(c->listen.s, "tls+tcp://[::1]:7400");
	CHECK_EQ(c->listen.line, 4);
	CHECK_STR(c->tls_cert.s, in_dir("keys/alpha.tls.crt"));
	CHECK_EQ(c->tls_cert.line, 5);
	CHECK_STR(c->tls_key.s, in_dir("keys/alpha.tls.key"));
	CHECK_STR(c->sign_key.s, "/etc/interlist/alpha.sign.key");
	CHECK_EQ(c->sign_key.line, 7);
	CHECK_STR(c->data_dir.s, in_dir("data"));
	CHECK_STR(c->status_socket.s, in_dir("run/st.sock"));
	CHECK_EQ(c->status_socket.line, 9);
	CHECK_EQ(c->retention_days, 90);
	CHECK_EQ(c->max_message_bytes, 2097152);
	CHECK_EQ(c->hop_limit, 8);
	CHECK_EQ(c->log_level, IL_LOG_DEBUG);
	CHECK_STR(c->metrics_listen.s, "http://127.0.0.1:9100");

	CHECK_EQ(c->n_peers, 1);
	const struct il_peer_conf *p = config_peer(c, "beta");
	CHECK(p != NULL);
	if (p) {
		CHECK_EQ(p->line, 16);
		CHECK_STR(p->url.s, "tls+tcp://beta.example.org:7400");
		CHECK_STR(p->tls_cert.s, in_dir("peers/beta.crt"));
		CHECK_EQ(p->tls_cert.line, 18);
		CHECK_EQ(p->n_sign_pub, 1);
		CHECK_STR(p->sign_pub[0].s, in_dir("peers/beta.pub"));
		CHECK_EQ(p->sign_pub[0].line, 19);
		CHECK_EQ(p->n_lists, 2);
		CHECK_STR(p->lists[0], "incidents");
		CHECK_STR(p->lists[1], "contacts");
		CHECK(p->lists[2] == NULL);
		CHECK_EQ(p->lists_line, 20);
		CHECK(config_peer_has_list(p, "contacts"));
		CHECK(!config_peer_has_list(p, "hooks.v2"));
		CHECK_EQ(p->max_tlp, IL_TLP_AMBER_STRICT);
		CHECK(p->max_rate == 2.5);
	}
	CHECK(config_peer(c, "gamma") == NULL);

	CHECK_EQ(c->n_origins, 1);
	const struct il_origin_conf *o = config_origin(c, "gamma");
	CHECK(o != NULL);
	if (o) {
		CHECK_EQ(o->line, 24);
		CHECK_EQ(o->n_sign_pub, 1);
		CHECK_STR(o->sign_pub[0].s, in_dir("origins/gamma.pub"));
		CHECK_EQ(o->sign_pub[0].line, 25);
	}
	CHECK(config_origin(c, "beta") == NULL);

	CHECK_EQ(c->n_lists, 3);
	const struct il_list_conf *l = config_list(c, "incidents");
	CHECK(l != NULL);
	if (l) {
		CHECK_EQ(l->line, 27);
		CHECK_STR(l->deliver.s, "smtp://mail.example.org:25");
		CHECK_EQ(l->deliver.line, 28);
		CHECK_EQ(l->deliver_kind, IL_DELIVER_SMTP);
		CHECK_STR(l->deliver_target, "mail.example.org:25");
		CHECK(l->exec_argv == NULL);
		CHECK_EQ(l->default_tlp, IL_TLP_GREEN);
		CHECK_EQ(l->ingest_kind, IL_INGEST_LMTP_TCP);
		CHECK_STR(l->ingest_target, "127.0.0.1:2424");
		CHECK_EQ(l->ingest.line, 30);
		CHECK_STR(l->rcpt, "incidents@example.org");
		CHECK_STR(l->mail_from, "relay@example.org");
		CHECK_EQ(l->smtp_tls, IL_SMTP_TLS_REQUIRED);
		CHECK_EQ(l->exec_timeout_s, 30);
		CHECK_EQ(l->max_deliveries, 8);
		CHECK_EQ(l->n_accept_origins, 2);
		CHECK_STR(l->accept_origins[0], "gamma");
		CHECK_STR(l->accept_origins[1], "delta");
	}
	l = config_list(c, "contacts");
	CHECK(l != NULL);
	if (l) {
		CHECK_EQ(l->deliver_kind, IL_DELIVER_MAILDIR);
		CHECK_STR(l->deliver_target, in_dir("mail/contacts"));
		CHECK_EQ(l->ingest_kind, IL_INGEST_LMTP_UNIX);
		CHECK_STR(l->ingest_target, in_dir("run/lmtp.sock"));
		CHECK_EQ(l->smtp_tls, IL_SMTP_TLS_OFF);
	}
	l = config_list(c, "hooks.v2");
	CHECK(l != NULL);
	if (l) {
		CHECK_EQ(l->deliver_kind, IL_DELIVER_EXEC);
		CHECK_STR(l->deliver_target, "/usr/local/bin/hook --to ops");
		CHECK_STR(l->exec_argv[0], "/usr/local/bin/hook");
		CHECK_STR(l->exec_argv[1], "--to");
		CHECK_STR(l->exec_argv[2], "ops");
		CHECK(l->exec_argv[3] == NULL);
	}
	CHECK(config_list(c, "nope") == NULL);
	config_free(c);
}

static void test_defaults(void)
{
	struct il_config *c = NULL;
	char err[ERRLEN] = "";
	int rc = load(RELAY "[peer beta]\ntls_cert = b.crt\nsign_pub = b.pub\n"
			    "[list ops]\n", &c, err);
	CHECK_EQ(rc, 0);
	if (rc != 0) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK(c->listen.s == NULL);
	CHECK(c->metrics_listen.s == NULL);
	CHECK_STR(c->status_socket.s, in_dir("data/status.sock"));
	CHECK_EQ(c->status_socket.line, 6);
	CHECK_EQ(c->retention_days, 30);
	CHECK_EQ(c->max_message_bytes, 1048576);
	CHECK_EQ(c->hop_limit, IL_DEFAULT_HOP_LIMIT);
	CHECK_EQ(c->envelope_version, 2);
	CHECK_EQ(c->log_level, IL_LOG_INFO);
	const struct il_peer_conf *p = config_peer(c, "beta");
	CHECK(p && p->url.s == NULL && p->n_lists == 0 && p->lists == NULL);
	CHECK(p && p->max_tlp == IL_TLP_AMBER && p->max_rate == 0);
	CHECK(p && config_peer_has_list(p, "anything"));
	const struct il_list_conf *l = config_list(c, "ops");
	CHECK(l && l->deliver_kind == IL_DELIVER_NONE && l->deliver.s == NULL);
	CHECK(l && l->ingest_kind == IL_INGEST_NONE && l->ingest_target == NULL);
	CHECK(l && l->default_tlp == IL_TLP_AMBER && l->smtp_tls == IL_SMTP_TLS_STARTTLS);
	CHECK(l && l->exec_timeout_s == 60 && l->max_deliveries == 4);
	CHECK(l && l->n_accept_origins == 0 && l->rcpt == NULL);
	CHECK(l && l->mail_from && strncmp(l->mail_from, "interlist@", 10) == 0 &&
	      strlen(l->mail_from) > 10);
	config_free(c);
}

static void test_comments_and_blanks(void)
{
	const char *text =
		"; leading comment\n"
		"   # indented comment\n"
		"\t[  relay  ]   # trailing comment\n"              /* 3 */
		"id=alpha\n"
		"  tls_cert\t=\talpha.tls.crt   ; why\n"
		"tls_key =alpha.tls.key#not-a-comment\n"
		"sign_key= alpha.sign.key # comment\n"
		"data_dir =   my data   \r\n"
		"hop_limit = 4;x\n"                                 /* 9: no blank before ; */
		"\n"
		"[list a]\r\n"
		"mail_from = ops#1@example.org\n"
		"rcpt =    ;only a comment\n";                      /* 13 */
	struct il_config *c = NULL;
	char err[ERRLEN];
	/* "4;x" is one value since ';' follows no blank, and not a number. */
	EXPECT_ERR(text, 9, "hop_limit: '4;x' is not a whole number");
	/* An empty value, even after a comment is removed, is refused. */
	char *t2 = replace(text, "4;x", "4 x");
	EXPECT_ERR(t2, 9, "'4 x' is not a whole number");
	free(t2);
	t2 = replace(text, "4;x", "4 ;");
	EXPECT_ERR(t2, 13, "rcpt: empty value");
	free(t2);
	t2 = replace(text, "rcpt =    ;only a comment\n", "");
	char *t3 = replace(t2, "4;x", "4 ;");
	free(t2);
	t2 = t3;
	int rc = load(t2, &c, err);
	CHECK_EQ(rc, 0);
	if (rc == 0) {
		CHECK_EQ(c->relay_line, 3);
		CHECK_STR(c->id, "alpha");
		CHECK_STR(c->tls_cert.s, in_dir("alpha.tls.crt"));
		CHECK_STR(c->tls_key.s, in_dir("alpha.tls.key#not-a-comment"));
		CHECK_STR(c->sign_key.s, in_dir("alpha.sign.key"));
		CHECK_STR(c->data_dir.s, in_dir("my data"));
		CHECK_EQ(c->hop_limit, 4);
		CHECK_STR(c->lists[0].mail_from, "ops#1@example.org");
		config_free(c);
	} else {
		fprintf(stderr, "  %s\n", err);
	}
	free(t2);
}

static void test_sign_pub_multi(void)
{
	struct il_config *c = NULL;
	char err[ERRLEN];
	int rc = load(RELAY
		      "[origin old-friend]\n"                        /* 7 */
		      "sign_pub = k1.pub , /abs/k2.pub\n"
		      "sign_pub = k3.pub\n"
		      "[peer beta]\n"
		      "tls_cert = b.crt\n"
		      "sign_pub = b-2024.pub\n"                      /* 12 */
		      "sign_pub = b-2025.pub\n",
		      &c, err);
	CHECK_EQ(rc, 0);
	if (rc != 0) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	const struct il_origin_conf *o = config_origin(c, "old-friend");
	CHECK(o && o->n_sign_pub == 3);
	if (o && o->n_sign_pub == 3) {
		CHECK_STR(o->sign_pub[0].s, in_dir("k1.pub"));
		CHECK_EQ(o->sign_pub[0].line, 8);
		CHECK_STR(o->sign_pub[1].s, "/abs/k2.pub");
		CHECK_EQ(o->sign_pub[1].line, 8);
		CHECK_STR(o->sign_pub[2].s, in_dir("k3.pub"));
		CHECK_EQ(o->sign_pub[2].line, 9);
	}
	const struct il_peer_conf *p = config_peer(c, "beta");
	CHECK(p && p->n_sign_pub == 2);
	if (p && p->n_sign_pub == 2) {
		CHECK_STR(p->sign_pub[1].s, in_dir("b-2025.pub"));
		CHECK_EQ(p->sign_pub[1].line, 13);
	}
	config_free(c);
	EXPECT_ERR(RELAY "[origin o]\nsign_pub = a.pub,,b.pub\n", 8, "sign_pub: empty item");
}

static void test_exec_argv(void)
{
	struct il_config *c = NULL;
	char err[ERRLEN];
	int rc = load(RELAY "[list x]\n"
		      "deliver = exec:  /usr/bin/proc --list \"incident reports\" -x a\"b c\"d \"\"\n",
		      &c, err);
	CHECK_EQ(rc, 0);
	if (rc != 0) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	char **v = c->lists[0].exec_argv;
	CHECK_STR(v[0], "/usr/bin/proc");
	CHECK_STR(v[1], "--list");
	CHECK_STR(v[2], "incident reports");
	CHECK_STR(v[3], "-x");
	CHECK_STR(v[4], "ab cd");
	CHECK_STR(v[5], "");
	CHECK(v[6] == NULL);
	config_free(c);

	EXPECT_ERR(RELAY "[list x]\ndeliver = exec:bin/proc\n", 8, "must be an absolute path");
	EXPECT_ERR(RELAY "[list x]\ndeliver = exec:/bin/p \"a b\n", 8, "unterminated quote");
	EXPECT_ERR(RELAY "[list x]\ndeliver = exec:\n", 8, "deliver: empty command");
	EXPECT_ERR(RELAY "[list x]\ndeliver = exec: \"\"\n", 8, "absolute path");
}

static void test_errors(void)
{
	/* Missing keys name the section's header line. */
	EXPECT_ERR("[relay]\nid = alpha\ntls_cert = a\ntls_key = b\nsign_key = c\n", 1,
		   "[relay]: missing required key 'data_dir'");
	EXPECT_ERR("\n\n[relay]\ntls_cert = a\ntls_key = b\nsign_key = c\ndata_dir = d\n", 3,
		   "missing required key 'id'");
	EXPECT_ERR(RELAY "\n[peer beta]\nsign_pub = b.pub\n[list x]\n", 8,
		   "[peer beta]: missing required key 'tls_cert'");
	EXPECT_ERR(RELAY "[peer beta]\ntls_cert = b.crt\n", 7, "missing required key 'sign_pub'");
	EXPECT_ERR(RELAY "[origin o]\n", 7, "[origin o]: missing required key 'sign_pub'");
	EXPECT_ERR(RELAY "[list x]\ndeliver = smtp://localhost:25\n", 7,
		   "[list x]: missing required key 'rcpt'");
	EXPECT_ERR("# nothing\n[list x]\n", 0, "missing required section [relay]");
	EXPECT_ERR("", 0, "missing required section [relay]");
	EXPECT_ERR("[relay]\nid = alpha\ntls_cert = a\ntls_key = b\nsign_key = c\ndata_dir =\n",
		   6, "data_dir: empty value");
	EXPECT_ERR("[relay]\nid = \ntls_cert = a\n", 2, "id: empty value");

	/* Ids and names. */
	EXPECT_ERR("[relay]\nid = Alpha\n", 2, "id: bad relay id 'Alpha'");
	EXPECT_ERR("[relay]\nid = abcdefghijabcdefghijabcdefghijabc\n", 2, "bad relay id");
	EXPECT_ERR(RELAY "[peer be_ta]\n", 7, "bad peer id 'be_ta'");
	EXPECT_ERR(RELAY "[origin a.b]\n", 7, "bad origin id 'a.b'");
	EXPECT_ERR(RELAY "[list Big]\n", 7, "bad list name 'Big'");
	EXPECT_ERR(RELAY "[list ..]\n", 7, "bad list name '..'");
	EXPECT_ERR(RELAY "[peer alpha]\ntls_cert = a\nsign_pub = b\n", 7,
		   "'alpha' is this relay's own id");
	EXPECT_ERR("[peer alpha]\ntls_cert = a\nsign_pub = b\n" RELAY, 1,
		   "this relay's own id");
	EXPECT_ERR(RELAY "[peer b]\ntls_cert = a\nsign_pub = b\n[origin b]\nsign_pub = c\n", 10,
		   "'b' is already a [peer] at line 7");
	EXPECT_ERR(RELAY "[origin b]\nsign_pub = c\n[peer b]\n", 9, "already a [origin] at line 7");
	EXPECT_ERR(RELAY "[list x]\naccept_origins = a, B\n", 8, "accept_origins: bad relay id 'B'");
	EXPECT_ERR(RELAY "[peer b]\ntls_cert = a\nsign_pub = b\nlists = x, y/z\n", 10,
		   "lists: bad list name 'y/z'");

	/* URLs and addresses. */
	EXPECT_ERR(RELAY "listen = tcp://0.0.0.0:7400\n", 7,
		   "listen: bad URL scheme in 'tcp://0.0.0.0:7400': expected tls+tcp://HOST:PORT");
	EXPECT_ERR(RELAY "[peer b]\nurl = https://b.example:1\n", 8, "url: bad URL scheme");
	EXPECT_ERR(RELAY "metrics_listen = tls+tcp://127.0.0.1:9100\n", 7,
		   "metrics_listen: bad URL scheme");
	EXPECT_ERR(RELAY "listen = tls+tcp://0.0.0.0:0\n", 7, "port must be a number 1..65535");
	EXPECT_ERR(RELAY "listen = tls+tcp://0.0.0.0:65536\n", 7, "port must be");
	EXPECT_ERR(RELAY "listen = tls+tcp://0.0.0.0\n", 7, "expected HOST:PORT");
	EXPECT_ERR(RELAY "listen = tls+tcp://::1:7400\n", 7, "IPv6 address goes in brackets");
	EXPECT_ERR(RELAY "listen = tls+tcp://[::g]:7400\n", 7, "bad IPv6 address");
	EXPECT_ERR(RELAY "listen = tls+tcp://300.1.1.1:7400\n", 7, "bad IPv4 address");
	EXPECT_ERR(RELAY "listen = tls+tcp://-bad.example:7400\n", 7, "bad host name");
	EXPECT_ERR(RELAY "listen = tls+tcp://h:7400/path\n", 7, "port must be");
	EXPECT_ERR(RELAY "[list x]\ndeliver = lmtp://h:24\n", 8,
		   "deliver: expected maildir:PATH, smtp://HOST:PORT or exec:COMMAND");
	EXPECT_ERR(RELAY "[list x]\ndeliver = smtp://h\n", 8, "deliver: expected HOST:PORT");
	EXPECT_ERR(RELAY "[list x]\ningest = smtp://h:25\n", 8,
		   "ingest: expected lmtp://HOST:PORT or lmtp:unix:PATH");
	/* One listener per address. */
	EXPECT_ERR(RELAY "[list x]\ningest = lmtp://127.0.0.1:2424\n[list y]\n"
		   "ingest = lmtp://127.0.0.1:2424\n", 10,
		   "ingest: 127.0.0.1:2424 is already [list x]'s (line 8)");
	EXPECT_ERR(RELAY "[list x]\ningest = lmtp:unix:/run/x.sock\n[list y]\n"
		   "ingest = lmtp:unix:/run/x.sock\n", 10, "is already [list x]'s (line 8)");
	EXPECT_ERR("[relay]\nid = alpha\ntls_cert = a\ntls_key = b\nsign_key = c\ndata_dir = d\n"
		   "status_socket = /run/s.sock\n[list x]\ningest = lmtp:unix:/run/s.sock\n", 9,
		   "ingest: /run/s.sock is the status_socket");
	EXPECT_ERR(RELAY "[list x]\ningest = lmtp://h:0\n", 8, "ingest: port must be");
	EXPECT_ERR(RELAY "[list x]\nrcpt = not an address\n", 8, "rcpt: 'not an address' is not");

	/* Structure. */
	EXPECT_ERR("id = alpha\n" RELAY, 1, "'id' is outside any section");
	EXPECT_ERR(RELAY "[relay]\n", 7, "duplicate section [relay] (first at line 1)");
	EXPECT_ERR(RELAY "[peer b]\ntls_cert = a\nsign_pub = b\n\n[peer b]\n", 11,
		   "duplicate section [peer b] (first at line 7)");
	EXPECT_ERR(RELAY "[origin b]\nsign_pub = b\n[origin b]\n", 9,
		   "duplicate section [origin b]");
	EXPECT_ERR(RELAY "[list x]\n[list x]\n", 8, "duplicate section [list x] (first at line 7)");
	EXPECT_ERR(RELAY "data_dir = other\n", 7,
		   "duplicate key 'data_dir' in [relay] (first at line 6)");
	EXPECT_ERR(RELAY "[peer b]\ntls_cert = a\nurl = tls+tcp://b:1\nurl = tls+tcp://b:2\n", 10,
		   "duplicate key 'url' in [peer b] (first at line 9)");
	EXPECT_ERR(RELAY "colour = blue\n", 7, "unknown key 'colour' in [relay]");
	EXPECT_ERR(RELAY "[list x]\nsign_pub = a\n", 8, "unknown key 'sign_pub' in [list x]");
	EXPECT_ERR(RELAY "[server]\n", 7, "unknown section [server]");
	EXPECT_ERR(RELAY "[peer b\n", 7, "section header without ']'");
	EXPECT_ERR(RELAY "[peer]\n", 7, "section [peer] needs an id");
	EXPECT_ERR(RELAY "[list]\n", 7, "section [list] needs a name");
	EXPECT_ERR("[relay main]\n", 1, "[relay] takes no name");
	EXPECT_ERR(RELAY "[peer a b]\n", 7, "too many words");
	EXPECT_ERR(RELAY "[ ]\n", 7, "empty section header");
	EXPECT_ERR(RELAY "[list x] extra\n", 7, "unexpected text after ']'");
	EXPECT_ERR(RELAY "just words\n", 7, "expected KEY = VALUE or [SECTION]");
	EXPECT_ERR(RELAY " = value\n", 7, "missing key before '='");
	EXPECT_ERR(RELAY "hop_limit = 3\001\n", 7, "control character 0x01");

	/* Numbers and enumerations. */
	EXPECT_ERR(RELAY "retention_days = 10d\n", 7, "retention_days: '10d' is not a whole number");
	EXPECT_ERR(RELAY "retention_days = 0\n", 7, "retention_days: 0 is out of range (1..3650)");
	EXPECT_ERR(RELAY "retention_days = 3651\n", 7, "out of range (1..3650)");
	EXPECT_ERR(RELAY "envelope_version = 3\n", 7, "envelope_version: 3 is out of range (1..2)");
	EXPECT_ERR(RELAY "envelope_version = 0\n", 7, "out of range (1..2)");
	EXPECT_ERR(RELAY "retention_days = 99999999999999999999999\n", 7, "out of range");
	EXPECT_ERR(RELAY "hop_limit = 33\n", 7, "hop_limit: 33 is out of range (1..32)");
	EXPECT_ERR(RELAY "hop_limit = -1\n", 7, "out of range");
	EXPECT_ERR(RELAY "max_message_bytes = 1023\n", 7, "out of range (1024..67108864)");
	EXPECT_ERR(RELAY "max_message_bytes = 67108865\n", 7, "out of range");
	EXPECT_ERR(RELAY "max_message_bytes = 1M\n", 7, "not a whole number");
	EXPECT_ERR(RELAY "log_level = verbose\n", 7, "log_level: expected error, warn, info or debug");
	EXPECT_ERR(RELAY "[peer b]\nmax_tlp = orange\n", 8, "max_tlp: expected clear, green");
	EXPECT_ERR(RELAY "[peer b]\nmax_rate = -1\n", 8, "max_rate: -1 is out of range");
	EXPECT_ERR(RELAY "[peer b]\nmax_rate = inf\n", 8, "max_rate: 'inf' is not a number");
	EXPECT_ERR(RELAY "[peer b]\nmax_rate = 1.2.3\n", 8, "not a number");
	EXPECT_ERR(RELAY "[list x]\nexec_timeout = 3601\n", 8, "exec_timeout: 3601 is out of range");
	EXPECT_ERR(RELAY "[list x]\nmax_deliveries = 0\n", 8, "max_deliveries: 0 is out of range");
	EXPECT_ERR(RELAY "[list x]\nsmtp_tls = maybe\n", 8, "smtp_tls: expected off, starttls");
	EXPECT_ERR(RELAY "[list x]\ndefault_tlp = blue\n", 8, "default_tlp: expected clear");

	/* Cross-section: a peer's lists must name [list] sections, at the key's line. */
	EXPECT_ERR(RELAY "[peer b]\ntls_cert = a\nsign_pub = b\nlists = x, nope\n[list x]\n", 10,
		   "lists: no [list nope] section in this file");

	/* Sockets must fit sun_path. */
	char long_text[1024];
	char longdir[200];
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[sizeof(longdir) - 1] = 0;
	snprintf(long_text, sizeof(long_text),
		 "[relay]\nid = a\ntls_cert = a\ntls_key = b\nsign_key = c\ndata_dir = /%s\n",
		 longdir);
	EXPECT_ERR(long_text, 6, "status_socket:");
	snprintf(long_text, sizeof(long_text), RELAY "[list x]\ningest = lmtp:unix:/%s\n", longdir);
	EXPECT_ERR(long_text, 8, "longer than 107 bytes");
}

static void test_file_names(void)
{
	struct il_config *c = (struct il_config *)1;
	char err[ERRLEN];
	char missing[PATH_MAX + 32];
	snprintf(missing, sizeof(missing), "%s/nope.conf", dir);
	CHECK_EQ(config_load(missing, &c, err, sizeof(err)), -ENOENT);
	CHECK(c == NULL);
	char want[PATH_MAX + 80];
	snprintf(want, sizeof(want), "%s:0: cannot read: No such file or directory", missing);
	CHECK_STR(err, want);
	CHECK_EQ(config_load(dir, &c, err, sizeof(err)), -EISDIR);

	/* A relative name stays as given in messages; paths anchor at its folder. */
	char cwd[PATH_MAX];
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK_EQ(chdir(dir), 0);
	mkdir("sub", 0700);
	write_file("sub/r.conf", RELAY "bogus = 1\n");
	CHECK_EQ(config_load("sub/r.conf", &c, err, sizeof(err)), IL_ECONFIG);
	CHECK_STR(err, "sub/r.conf:7: unknown key 'bogus' in [relay]");
	write_file("sub/r.conf", RELAY);
	CHECK_EQ(config_load("sub/r.conf", &c, err, sizeof(err)), 0);
	if (c) {
		CHECK_STR(c->path, "sub/r.conf");
		CHECK_STR(c->tls_key.s, in_dir("sub/alpha.tls.key"));
		config_free(c);
	}
	CHECK_EQ(chdir(cwd), 0);

	/* The buffer entry point: no NUL needed, NUL bytes refused. */
	const char buf[] = RELAY "[list x]\n";
	CHECK_EQ(config_load_buffer("/virtual/x.conf", buf, sizeof(buf) - 1, &c, err,
				    sizeof(err)), 0);
	if (c) {
		CHECK_STR(c->data_dir.s, "/virtual/data");
		config_free(c);
	}
	CHECK_EQ(config_load_buffer("/virtual/x.conf", buf, sizeof(buf), &c, err, sizeof(err)),
		 IL_ECONFIG);
	CHECK_STR(err, "/virtual/x.conf:8: control character 0x00 in line");
	/* A small err buffer truncates but never overflows. */
	char tiny[8];
	CHECK_EQ(config_load_buffer("/virtual/x.conf", "x", 1, &c, tiny, sizeof(tiny)),
		 IL_ECONFIG);
	CHECK_STR(tiny, "/virtua");
	config_free(NULL);
}

static void test_helpers(void)
{
	CHECK(config_valid_id("a"));
	CHECK(config_valid_id("relay-01"));
	CHECK(config_valid_id("abcdefghijabcdefghijabcdefghijab"));
	CHECK(!config_valid_id("abcdefghijabcdefghijabcdefghijabc"));
	CHECK(!config_valid_id(""));
	CHECK(!config_valid_id("A"));
	CHECK(!config_valid_id("a_b"));
	CHECK(!config_valid_id("a.b"));

	char host[256];
	uint16_t port = 0;
	CHECK_EQ(config_split_hostport("[2001:db8::1]:7400", host, sizeof(host), &port), 0);
	CHECK_STR(host, "2001:db8::1");
	CHECK_EQ(port, 7400);
	CHECK_EQ(config_split_hostport("mail.example.org:25", host, sizeof(host), &port), 0);
	CHECK_STR(host, "mail.example.org");
	CHECK_EQ(port, 25);
	CHECK_EQ(config_split_hostport("mail:0", host, sizeof(host), &port), -ERANGE);
	CHECK_EQ(config_split_hostport("mail", host, sizeof(host), &port), -EINVAL);
	CHECK_EQ(config_split_hostport("mail.example.org:25", host, 4, &port), -ENAMETOOLONG);
}

/* Write cfg naming keys made by keys_generate() in dir/keys. */
static void test_check_files(void)
{
	char kdir[PATH_MAX + 16], kerr[256] = "", err[ERRLEN] = "";
	snprintf(kdir, sizeof(kdir), "%s/keys", dir);
	mkdir(kdir, 0700);
	int rc = keys_generate(kdir, "alpha", kerr, sizeof(kerr));
	CHECK_EQ(rc, 0);
	rc |= keys_generate(kdir, "beta", kerr, sizeof(kerr));
	rc |= keys_generate(kdir, "gamma", kerr, sizeof(kerr));
	if (rc != 0) {
		fprintf(stderr, "  keys_generate: %s\n", kerr);
		return;
	}
	const char *text =
		"[relay]\n"
		"id = alpha\n"
		"tls_cert = keys/alpha.tls.crt\n"
		"tls_key = keys/alpha.tls.key\n"
		"sign_key = keys/alpha.sign.key\n"              /* 5 */
		"data_dir = data\n"
		"[peer beta]\n"
		"tls_cert = keys/beta.tls.crt\n"
		"sign_pub = keys/beta.sign.pub, keys/gamma.sign.pub\n"
		"sign_pub = keys/missing.pub\n"                 /* 10 */
		"[origin gamma]\n"
		"sign_pub = keys/gamma.sign.pub\n";
	struct il_config *c = NULL;
	char *ok_text = replace(text, "sign_pub = keys/missing.pub\n", "");
	CHECK_EQ(load(ok_text, &c, err), 0);
	free(ok_text);
	if (!c) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK_EQ(config_check_files(c, err, sizeof(err)), 0);
	config_free(c);

	/* A public key file that is not there: named with its line. */
	char want[PATH_MAX * 2];
	CHECK_EQ(load(text, &c, err), 0);
	if (c) {
		CHECK(config_check_files(c, err, sizeof(err)) < 0);
		snprintf(want, sizeof(want), "%s:10: sign_pub: %s: ", cfgpath,
			 in_dir("keys/missing.pub"));
		CHECK(strncmp(err, want, strlen(want)) == 0);
		CHECK(strstr(err, "No such file") != NULL);
		if (strncmp(err, want, strlen(want)) != 0)
			fprintf(stderr, "  got \"%s\"\n", err);
		config_free(c);
	}

	/* A private key others may read is refused at the sign_key line. */
	CHECK_EQ(chmod(in_dir("keys/alpha.sign.key"), 0644), 0);
	CHECK_EQ(load(text, &c, err), 0);
	if (c) {
		CHECK_EQ(config_check_files(c, err, sizeof(err)), IL_EKEY);
		snprintf(want, sizeof(want), "%s:5: sign_key: %s: ", cfgpath,
			 in_dir("keys/alpha.sign.key"));
		CHECK(strncmp(err, want, strlen(want)) == 0);
		CHECK(strstr(err, "group or others") != NULL);
		if (strncmp(err, want, strlen(want)) != 0)
			fprintf(stderr, "  got \"%s\"\n", err);
		config_free(c);
	}
	CHECK_EQ(chmod(in_dir("keys/alpha.sign.key"), 0600), 0);

	/* The TLS key (ECDSA) cannot sign messages. */
	char *swapped = replace(text, "keys/alpha.sign.key", "keys/alpha.tls.key");
	CHECK_EQ(load(swapped, &c, err), 0);
	free(swapped);
	if (c) {
		CHECK_EQ(config_check_files(c, err, sizeof(err)), IL_EKEY);
		CHECK(strstr(err, ":5: sign_key: ") != NULL && strstr(err, "Ed25519") != NULL);
		config_free(c);
	}

	/* A certificate that is not one: at the peer's tls_cert line. */
	char *badcert = replace(text, "keys/beta.tls.crt", "keys/beta.tls.key");
	CHECK_EQ(load(badcert, &c, err), 0);
	free(badcert);
	if (c) {
		CHECK(config_check_files(c, err, sizeof(err)) < 0);
		snprintf(want, sizeof(want), "%s:8: tls_cert: ", cfgpath);
		CHECK(strncmp(err, want, strlen(want)) == 0);
		config_free(c);
	}
}

int main(void)
{
	if (!realpath(check_tmpdir(), dir)) {
		perror("realpath");
		return 2;
	}
	snprintf(cfgpath, sizeof(cfgpath), "%s/interlist.conf", dir);
	test_full();
	test_defaults();
	test_comments_and_blanks();
	test_sign_pub_multi();
	test_exec_argv();
	test_errors();
	test_file_names();
	test_helpers();
	test_check_files();
	return check_done("test_config");
}
