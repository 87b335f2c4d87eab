/*
 * ctl.h — interlistctl's verbs. Each takes the arguments after the verb
 * (argv[0] is the verb) plus the global options, and returns the process
 * exit status (sysexits: 64 usage, 65 bad data, 69 unavailable, 75 try
 * later, 78 config).
 */
#ifndef IL_CTL_H
#define IL_CTL_H

#define EX_OK_ 0
#define EX_USAGE_ 64
#define EX_DATAERR_ 65
#define EX_UNAVAILABLE_ 69
#define EX_SOFTWARE_ 70
#define EX_CANTCREAT_ 73
#define EX_IOERR_ 74
#define EX_TEMPFAIL_ 75
#define EX_CONFIG_ 78

struct ctl_opts {
	const char *config;     /* -c FILE, or NULL */
	const char *socket;     /* -s SOCK, or NULL */
	int human;              /* --human */
};

int ctl_init(const struct ctl_opts *o, int argc, char **argv);
int ctl_check(const struct ctl_opts *o, int argc, char **argv);
int ctl_fingerprint(const struct ctl_opts *o, int argc, char **argv);

/* Verbs that talk to the daemon's status socket (ctl_socket.c). */
int ctl_submit(const struct ctl_opts *o, int argc, char **argv);
int ctl_command(const struct ctl_opts *o, int argc, char **argv);

/* `status [--human]`: ctl_command, or its answer as tables (ctl_human.c). */
int ctl_status(const struct ctl_opts *o, int argc, char **argv);

/* `backup OUT`: a consistent copy of the store, read-only (ctl_backup.c). */
int ctl_backup(const struct ctl_opts *o, int argc, char **argv);

#endif
