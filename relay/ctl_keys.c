/*
 * ctl_keys.c — interlistctl's offline verbs: init (a relay's keys and the
 * stanza its peers paste), check (the config and every file it names) and
 * fingerprint (what two operators compare by phone).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "il/config.h"
#include "il/crypto.h"
#include "il/error.h"
#include "ctl.h"

/* sysexits EX_NOINPUT: an input file is missing or unreadable. */
#define CTL_EX_NOINPUT 66

/* The relay id rule, [a-z0-9-]{1,32}, checked here too so that init reports
 * a bad id as a usage error before it touches the disk. */
static int valid_id(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > IL_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]; advances *i past what it
 * used. 1: matched (value in *out), 0: another option, -1: value missing. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **out)
{
	size_t n = strlen(name);
	if (strncmp(argv[*i], name, n) != 0)
		return 0;
	if (argv[*i][n] == '=') {
		*out = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n] != 0)
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*out = argv[++*i];
	return 1;
}

/* errno-style codes mean the file could not be opened or read; IL_E* codes
 * mean it was read and is not what it should be. */
static int input_status(int code)
{
	return code > -1000 ? CTL_EX_NOINPUT : EX_DATAERR_;
}

static void print_stanza(const char *id, const char *crt_fpr, const char *pub_fpr)
{
	printf("# interlist peer stanza for %s — send %s.tls.crt and %s.sign.pub with it.\n"
	       "# Compare these fingerprints with %s's operator by phone before trusting them:\n"
	       "#   tls_cert  %s\n"
	       "#   sign_pub  %s\n"
	       "[peer %s]\n"
	       "; url = tls+tcp://HOST:PORT   ; fill in %s's listen address, if it has one\n"
	       "tls_cert = keys/%s.tls.crt\n"
	       "sign_pub = keys/%s.sign.pub\n"
	       "; lists = incidents\n"
	       "; max_tlp = amber\n",
	       id, id, id, id, crt_fpr, pub_fpr, id, id, id, id);
}

int ctl_init(const struct ctl_opts *o, int argc, char **argv)
{
	const char *id = NULL, *dir = NULL;
	char err[512] = "", path[4096], crt_fpr[200], pub_fpr[200];
	(void)o;

	for (int i = 1; i < argc; i++) {
		int m = opt_value(argc, argv, &i, "--id", &id);
		if (m == 0)
			m = opt_value(argc, argv, &i, "--dir", &dir);
		if (m <= 0) {
			fprintf(stderr, "interlistctl init: %s '%s'\n"
				"usage: interlistctl init --id ID --dir DIR\n",
				m < 0 ? "missing value after" : "unexpected argument", argv[i]);
			return EX_USAGE_;
		}
	}
	if (!id || !dir || !*dir) {
		fprintf(stderr, "usage: interlistctl init --id ID --dir DIR\n");
		return EX_USAGE_;
	}
	if (!valid_id(id)) {
		fprintf(stderr, "interlistctl init: invalid id '%s': use 1 to %d of a-z, 0-9 and '-'\n",
			id, IL_ID_MAX);
		return EX_USAGE_;
	}

	int r = keys_generate(dir, id, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "interlistctl init: %s\n", err[0] ? err : il_strerror(r));
		if (r == IL_EFIELD)
			return EX_USAGE_;
		if (r == IL_ECRYPTO || r == -ENOMEM)
			return EX_SOFTWARE_;
		/* -EEXIST and every failure to create or write a file. */
		return EX_CANTCREAT_;
	}

	/* Fingerprint the files as written, with the same function `interlistctl
	 * fingerprint` uses, so both operators see the same strings. */
	snprintf(path, sizeof(path), "%s/%s.tls.crt", dir, id);
	if ((r = keys_fingerprint(path, crt_fpr, err, sizeof(err))) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/%s.sign.pub", dir, id);
	if ((r = keys_fingerprint(path, pub_fpr, err, sizeof(err))) < 0)
		goto fail;

	print_stanza(id, crt_fpr, pub_fpr);
	if (fflush(stdout) != 0) {
		perror("interlistctl init: stdout");
		return EX_SOFTWARE_;
	}
	/* Our own side goes to stderr, so stdout is only what peers paste. */
	fprintf(stderr,
		"interlistctl: wrote %s/%s.{sign.key,sign.pub,tls.key,tls.crt}\n"
		"interlistctl: this relay's own config takes:\n"
		"  [relay]\n"
		"  id = %s\n"
		"  tls_cert = %s/%s.tls.crt\n"
		"  tls_key = %s/%s.tls.key\n"
		"  sign_key = %s/%s.sign.key\n",
		dir, id, id, dir, id, dir, id, dir, id);
	return EX_OK_;
fail:
	fprintf(stderr, "interlistctl init: keys written, but %s\n", err);
	return EX_SOFTWARE_;
}

int ctl_check(const struct ctl_opts *o, int argc, char **argv)
{
	const char *path = o && o->config ? o->config : IL_DEFAULT_CONFIG;
	struct il_config *cfg = NULL;
	char err[1024] = "";

	/* `check -c FILE` works as well as the global `-c FILE check`. */
	for (int i = 1; i < argc; i++) {
		int m = opt_value(argc, argv, &i, "-c", &path);
		if (m == 0)
			m = opt_value(argc, argv, &i, "--config", &path);
		if (m <= 0) {
			fprintf(stderr, "usage: interlistctl check [-c FILE]\n");
			return EX_USAGE_;
		}
	}

	int r = config_load(path, &cfg, err, sizeof(err));
	if (r == 0)
		r = config_check_files(cfg, err, sizeof(err));
	config_free(cfg);
	if (r < 0) {
		if (err[0])
			fprintf(stderr, "%s\n", err);
		else
			fprintf(stderr, "%s: %s\n", path, il_strerror(r));
		return EX_CONFIG_;
	}
	printf("%s: ok\n", path);
	return EX_OK_;
}

int ctl_fingerprint(const struct ctl_opts *o, int argc, char **argv)
{
	char fpr[200], err[512] = "";
	(void)o;

	if (argc != 2 || argv[1][0] == 0) {
		fprintf(stderr, "usage: interlistctl fingerprint FILE\n");
		return EX_USAGE_;
	}
	int r = keys_fingerprint(argv[1], fpr, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "interlistctl fingerprint: %s\n", err[0] ? err : il_strerror(r));
		return input_status(r);
	}
	printf("%s\n", fpr);
	return EX_OK_;
}
