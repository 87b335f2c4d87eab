/*
 * store_upkeep.c — what runs beside the traffic: pruning after the retention
 * period, online backups, and the size figures for status and bench.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "il/error.h"
#include "il/util.h"
#include "store_int.h"

int store_prune(struct il_store *st, int64_t cutoff_ms, uint64_t *removed)
{
	if (!st)
		return -EINVAL;
	sqlite3_stmt *s;
	int r = store_stmt(st, STMT_PRUNE, &s);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, cutoff_ms);
	if ((r = store_exec(st, s, "prune")) != 0)
		return r;
	if (removed)
		*removed = (uint64_t)sqlite3_changes64(st->db);
	return 0;
}

static int backup_fail(char *err, size_t errlen, int code, const char *what, const char *path,
		       const char *detail)
{
	if (err && errlen)
		snprintf(err, errlen, "backup: %s%s: %s", what, path, detail);
	return code;
}

/* fsync the file at path and the folder holding it. */
static int sync_file_and_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	if (r)
		return r;
	char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	r = util_fsync_dir(dirname(copy));
	free(copy);
	return r;
}

int store_backup(struct il_store *st, const char *path, char *err, size_t errlen)
{
	if (!st || !path || !*path)
		return -EINVAL;
	if (err && errlen)
		err[0] = 0;
	/* O_EXCL refuses an existing path without a check-then-use race, and
	 * makes the copy 0600 like the database (VACUUM INTO accepts an empty
	 * file, and would otherwise create it 0644). */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = -errno;
		return backup_fail(err, errlen, e, "", path, il_strerror(e));
	}
	close(fd);

	/* Not cached: a backup is rare, and VACUUM INTO is no hot path. It
	 * reads one consistent snapshot, so the relay may go on writing. */
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(st->db, "VACUUM INTO ?1", -1, &s, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
	}
	int r = 0;
	if (rc != SQLITE_OK && rc != SQLITE_DONE) {
		r = store_err(st, rc, "backup");
		backup_fail(err, errlen, r, "", path, sqlite3_errmsg(st->db));
	}
	sqlite3_finalize(s);
	if (r)
		goto fail;
	/* VACUUM INTO does not sync its output: do it, so "backup done"
	 * means the copy survives a crash too. */
	if ((r = sync_file_and_dir(path)) != 0) {
		backup_fail(err, errlen, r, "sync ", path, il_strerror(r));
		goto fail;
	}
	return 0;

fail:
	unlink(path);
	return r;
}

int store_max_seq(struct il_store *st, int64_t *seq)
{
	if (!st || !seq)
		return -EINVAL;
	sqlite3_stmt *s;
	/* sqlite_sequence remembers the AUTOINCREMENT high mark even after
	 * the newest message was pruned. */
	int rc = sqlite3_prepare_v2(st->db, "SELECT coalesce(max(seq), 0) FROM sqlite_sequence"
				    " WHERE name = 'messages'", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return store_err(st, rc, "max_seq");
	rc = sqlite3_step(s);
	*seq = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	int r = rc == SQLITE_ROW ? 0 : store_err(st, rc, "max_seq");
	sqlite3_finalize(s);
	return r;
}

int store_size(struct il_store *st, uint64_t *messages, uint64_t *bytes)
{
	if (!st)
		return -EINVAL;
	sqlite3_stmt *s;
	int r = store_stmt(st, STMT_SIZE, &s);
	if (r)
		return r;
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (messages)
			*messages = (uint64_t)sqlite3_column_int64(s, 0);
		if (bytes)
			*bytes = (uint64_t)sqlite3_column_int64(s, 1);
	} else {
		r = store_err(st, rc, "size");
	}
	store_stmt_done(s);
	if (r || !bytes)
		return r;
	/* page_count is the size as of the last commit; until a checkpoint
	 * much of it may sit in the WAL, which takes disk space of its own. */
	char wal[4096];
	struct stat sb;
	if ((size_t)snprintf(wal, sizeof(wal), "%s-wal", st->path) < sizeof(wal) &&
	    stat(wal, &sb) == 0)
		*bytes += (uint64_t)sb.st_size;
	return 0;
}
