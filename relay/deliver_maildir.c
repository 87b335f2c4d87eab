/*
 * deliver_maildir.c — a real Maildir: write tmp/NAME, sync, rename into
 * new/NAME, fsync new/ once per batch. NAME is derived from the envelope id,
 * so a crash between the rename and the store's record finds the file there
 * (in new/, or in cur/ once a reader has seen it) and does not write a
 * second copy.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "il/envelope.h"
#include "il/util.h"
#include "deliver.h"

int deliver_maildir_prepare(const char *dir)
{
	static const char *subs[] = { "tmp", "new", "cur" };
	char p[PATH_MAX];
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, subs[i]);
		int e = util_mkdirs(p, 0700);
		if (e < 0)
			return e;
	}
	return 0;
}

static void file_name(const struct dl_item *it, char out[IL_ID_HEX_LEN + 16])
{
	char hex[IL_ID_HEX_LEN + 1];
	envelope_id_hex(it->id, hex);
	snprintf(out, IL_ID_HEX_LEN + 16, "%s.interlist", hex);
}

/* Delivered before (crash after the rename)? new/NAME or cur/NAME:2,... */
static int already_there(const char *dir, const char *name)
{
	char p[PATH_MAX];
	struct stat st;
	snprintf(p, sizeof(p), "%s/new/%s", dir, name);
	if (stat(p, &st) == 0)
		return 1;
	snprintf(p, sizeof(p), "%s/cur/%s", dir, name);
	if (stat(p, &st) == 0)
		return 1;
	size_t plen = strlen(name);
	snprintf(p, sizeof(p), "%s/cur", dir);
	DIR *d = opendir(p);
	int found = 0;
	if (!d)
		return 0;
	for (struct dirent *de; !found && (de = readdir(d));)
		found = !strncmp(de->d_name, name, plen) && de->d_name[plen] == ':';
	closedir(d);
	return found;
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static void fail(struct dl_item *it, const char *what, int e)
{
	/* A full or broken disk is worth retrying; the operator sees the error. */
	it->result = DL_TEMPFAIL;
	snprintf(it->error, sizeof(it->error), "maildir %s: %s", what, strerror(-e));
}

/*
 * Write the whole batch into tmp/, make it durable with one syncfs() (one
 * journal commit instead of one per file), then rename each file into new/
 * and fsync new/ once. A file is in new/ only once its bytes are on disk.
 */
void deliver_maildir_batch(const char *dir, struct dl_item *items, size_t n)
{
	char tmp[PATH_MAX], dst[PATH_MAX], name[IL_ID_HEX_LEN + 16];
	int written = 0, renamed = 0;
	for (size_t i = 0; i < n; i++) {
		struct dl_item *it = &items[i];
		file_name(it, name);
		it->result = DL_DONE;
		it->backend = NULL;
		if (already_there(dir, name)) {
			it->backend = (void *)1;        /* nothing to rename */
			continue;
		}
		snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, name);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0) {
			fail(it, "open", -errno);
			continue;
		}
		int e = write_all(fd, it->headers, strlen(it->headers));
		if (e == 0)
			e = write_all(fd, it->msg, it->msg_len);
		if (close(fd) < 0 && e == 0)
			e = -errno;
		if (e < 0) {
			unlink(tmp);
			fail(it, "write", e);
			continue;
		}
		written++;
	}
	if (written) {
		snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
		int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int e = fd < 0 ? -errno : (syncfs(fd) < 0 ? -errno : 0);
		if (fd >= 0)
			close(fd);
		if (e < 0) {
			for (size_t i = 0; i < n; i++)
				if (items[i].result == DL_DONE && !items[i].backend)
					fail(&items[i], "sync", e);
			return;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct dl_item *it = &items[i];
		if (it->result != DL_DONE || it->backend)
			continue;
		file_name(it, name);
		snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, name);
		snprintf(dst, sizeof(dst), "%s/new/%s", dir, name);
		if (rename(tmp, dst) < 0) {
			int e = -errno;
			unlink(tmp);
			fail(it, "rename", e);
			continue;
		}
		renamed++;
	}
	if (renamed) {
		snprintf(dst, sizeof(dst), "%s/new", dir);
		int e = util_fsync_dir(dst);
		if (e < 0)
			for (size_t i = 0; i < n; i++)
				if (items[i].result == DL_DONE)
					fail(&items[i], "fsync", e);
	}
	for (size_t i = 0; i < n; i++)
		items[i].backend = NULL;
}
