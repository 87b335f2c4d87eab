/*
 * ctl_backup.c — `interlistctl [-c FILE] backup OUT`: an online, consistent
 * copy of the relay's store while the daemon runs.
 *
 * Done in the CLI process, not the daemon: the daemon's loop must not stall
 * for a copy of the whole database. A second SQLite connection, read-only,
 * may read while the daemon writes (WAL), and `VACUUM INTO` copies one read
 * transaction's snapshot in one step. (The stepwise backup API restarts
 * whenever another connection writes, and under steady load may never
 * finish.) The copy is then synced, checked and its messages counted.
 *
 * Exit: 0 done; 64 usage; 73 OUT exists or cannot be created; 74 the store
 * cannot be read or the copy is bad; 78 config.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "il/config.h"
#include "il/store.h"
#include "il/util.h"
#include "ctl.h"

/* How long to wait for a lock the daemon holds briefly (WAL recovery or a
 * checkpoint at open); a plain read never waits on the daemon's writes. */
#define BACKUP_BUSY_MS 10000

static int sql_fail(sqlite3 *db, const char *what, const char *path)
{
	fprintf(stderr, "interlistctl: %s %s: %s\n", what, path,
		db ? sqlite3_errmsg(db) : "out of memory");
	return EX_IOERR_;
}

/* fsync the copy and its folder: "backup done" then survives a crash. */
static int sync_copy(const char *path)
{
	char *dup = strdup(path);
	int fd = open(path, O_RDONLY | O_CLOEXEC), e = 0;
	if (!dup || fd < 0 || fsync(fd) < 0)
		e = -errno;
	if (fd >= 0)
		close(fd);
	if (e == 0 && dup)
		e = util_fsync_dir(dirname(dup));
	free(dup);
	return e;
}

/* Open the copy, check it and count its messages. */
static int check_copy(const char *path, unsigned long long *messages)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int rc = EX_IOERR_;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sql_fail(db, "opening the copy", path);
		goto fail;
	}
	/* quick_check: the page structure, without the index-content pass that
	 * makes a full integrity_check slow on a large store. */
	if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		sql_fail(db, "checking the copy", path);
		goto fail;
	}
	if (strcmp((const char *)sqlite3_column_text(s, 0), "ok")) {
		fprintf(stderr, "interlistctl: the copy %s fails its check: %s\n", path,
			(const char *)sqlite3_column_text(s, 0));
		goto fail;
	}
	sqlite3_finalize(s);
	s = NULL;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM messages", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		sql_fail(db, "counting the messages in", path);
		goto fail;
	}
	*messages = (unsigned long long)sqlite3_column_int64(s, 0);
	rc = 0;
fail:
	sqlite3_finalize(s);
	sqlite3_close(db);
	return rc;
}

/* With no daemon running, reading a WAL database creates its -wal and -shm
 * files, and SQLite leaves them. Made by root, they would keep a daemon
 * running as its own user from opening the store: give them the store's
 * owner. (Only chown, never unlink: a daemon may have started meanwhile.) */
static void match_owner(const char *src)
{
	struct stat db, f;
	char path[4096];
	if (geteuid() != 0 || stat(src, &db) < 0)
		return;
	for (int i = 0; i < 2; i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s%s", src, i ? "-shm" : "-wal") >=
		    sizeof(path))
			return;
		if (stat(path, &f) == 0 && (f.st_uid != db.st_uid || f.st_gid != db.st_gid) &&
		    chown(path, db.st_uid, db.st_gid) < 0)
			fprintf(stderr, "interlistctl: warning: chown %s: %s\n", path, strerror(errno));
	}
}

int ctl_backup(const struct ctl_opts *o, int argc, char **argv)
{
	struct il_config *cfg = NULL;
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	char err[1024], *src = NULL;
	int rc = EX_CONFIG_, created = 0;
	unsigned long long messages = 0;
	if (argc != 2 || !argv[1][0]) {
		fprintf(stderr, "usage: interlistctl [-c FILE] backup OUT\n");
		return EX_USAGE_;
	}
	const char *out = argv[1];
	const char *conf = o->config ? o->config : IL_DEFAULT_CONFIG;
	if (config_load(conf, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "interlistctl: %s\n", err);
		goto fail;
	}
	rc = EX_IOERR_;
	if (asprintf(&src, "%s/%s", cfg->data_dir.s, IL_STORE_FILE) < 0) {
		src = NULL;
		fprintf(stderr, "interlistctl: out of memory\n");
		goto fail;
	}
	/* Read-only: the CLI never changes the daemon's store, and never
	 * creates one where the config points at nothing. */
	if (access(src, R_OK) < 0) {
		fprintf(stderr, "interlistctl: store %s: %s\n", src, strerror(errno));
		goto fail;
	}
	if (sqlite3_open_v2(src, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		rc = sql_fail(db, "opening the store", src);
		goto fail;
	}
	sqlite3_busy_timeout(db, BACKUP_BUSY_MS);
	/* Only after the store opened, so a failure leaves no empty file behind.
	 * O_EXCL refuses an existing OUT without a check-then-use race; 0600 as
	 * the store itself (VACUUM INTO takes an empty file as it is, and would
	 * otherwise create it with the umask's mode). */
	int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "interlistctl: %s: %s\n", out,
			errno == EEXIST ? "exists already; not overwriting it" : strerror(errno));
		rc = EX_CANTCREAT_;
		goto fail;
	}
	close(fd);
	created = 1;
	if (sqlite3_prepare_v2(db, "VACUUM INTO ?1", -1, &s, NULL) != SQLITE_OK) {
		rc = sql_fail(db, "reading the store", src);
		goto fail;
	}
	sqlite3_bind_text(s, 1, out, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE) {
		rc = sql_fail(db, "copying the store", src);
		goto fail;
	}
	sqlite3_finalize(s);
	s = NULL;
	sqlite3_close(db);
	db = NULL;
	match_owner(src);
	int e = sync_copy(out);
	if (e < 0) {
		fprintf(stderr, "interlistctl: syncing %s: %s\n", out, strerror(-e));
		goto fail;
	}
	if ((rc = check_copy(out, &messages)) != 0)
		goto fail;
	printf("backup %s: %llu messages\n", out, messages);
	created = 0;            /* done: keep it */
	rc = EX_OK_;
fail:
	sqlite3_finalize(s);
	if (db) {
		sqlite3_close(db);
		match_owner(src);
	}
	if (created)
		unlink(out);
	free(src);
	config_free(cfg);
	return rc;
}
