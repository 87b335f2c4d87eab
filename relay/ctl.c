/* ctl.c — interlistctl: option parsing and verb dispatch. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "il_build.h"
#include "ctl.h"

static const struct {
	const char *name;
	int (*fn)(const struct ctl_opts *, int, char **);
	const char *usage;
} verbs[] = {
	{ "init", ctl_init, "init --id ID --dir DIR" },
	{ "check", ctl_check, "check [-c FILE]" },
	{ "fingerprint", ctl_fingerprint, "fingerprint FILE" },
	{ "submit", ctl_submit, "[-s SOCK | -c FILE] submit LIST < message" },
	{ "status", ctl_status, "[-s SOCK | -c FILE] status [--human]" },
	{ "peers", ctl_command, "[-s SOCK | -c FILE] peers" },
	{ "metrics", ctl_command, "[-s SOCK | -c FILE] metrics" },
	{ "reload", ctl_command, "[-s SOCK | -c FILE] reload" },
	{ "failed", ctl_command, "[-s SOCK | -c FILE] failed LIST" },
	{ "retry", ctl_command, "[-s SOCK | -c FILE] retry LIST [ID]" },
	{ "queue", ctl_command, "[-s SOCK | -c FILE] queue PEER" },
	{ "purge", ctl_command, "[-s SOCK | -c FILE] purge PEER [ID]" },
	{ "backup", ctl_backup, "[-c FILE] backup OUT" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: interlistctl [-c FILE] [-s SOCK] VERB ...\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(f, "       interlistctl %s\n", verbs[i].usage);
}

int main(int argc, char **argv)
{
	struct ctl_opts o = { 0 };
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc)
			o.config = argv[++i];
		else if ((!strcmp(argv[i], "-s") || !strcmp(argv[i], "--socket")) && i + 1 < argc)
			o.socket = argv[++i];
		else if (!strcmp(argv[i], "--version")) {
			printf("interlistctl %s\n", IL_VERSION);
			return 0;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return EX_USAGE_;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EX_USAGE_;
	}
	for (size_t v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++) {
		if (strcmp(argv[i], verbs[v].name))
			continue;
		int rc = verbs[v].fn(&o, argc - i, argv + i);
		/* Output cut short (a full disk under a redirection) is no success. */
		if (fflush(stdout) != 0 || ferror(stdout)) {
			fprintf(stderr, "interlistctl: writing the output: %s\n", strerror(errno));
			return rc ? rc : 74;
		}
		return rc;
	}
	fprintf(stderr, "interlistctl: unknown verb '%s'\n", argv[i]);
	usage(stderr);
	return EX_USAGE_;
}
