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
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
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

/* The ids of the files in cur/ (a reader moved them there, adding
 * ":2,FLAGS"), read once per batch and searched by binary search. */
struct curset {
	char (*ids)[IL_ID_HEX_LEN + 1];
	size_t n;
	int loaded;
};

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, IL_ID_HEX_LEN);
}

static void cur_load(const char *dir, struct curset *cs)
{
	char p[PATH_MAX];
	size_t cap = 0;
	cs->loaded = 1;
	snprintf(p, sizeof(p), "%s/cur", dir);
	DIR *d = opendir(p);
	if (!d)
		return;
	for (struct dirent *de; (de = readdir(d));) {
		if (strlen(de->d_name) < IL_ID_HEX_LEN || strncmp(de->d_name + IL_ID_HEX_LEN, ".interlist", 10))
			continue;
		if (cs->n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			void *nb = realloc(cs->ids, ncap * sizeof(*cs->ids));
			if (!nb)
				break;
			cs->ids = nb;
			cap = ncap;
		}
		memcpy(cs->ids[cs->n], de->d_name, IL_ID_HEX_LEN);
		cs->ids[cs->n++][IL_ID_HEX_LEN] = 0;
	}
	closedir(d);
	if (cs->n)      /* an empty cur/ leaves ids NULL, which qsort may not take */
		qsort(cs->ids, cs->n, sizeof(*cs->ids), cmp_id);
}

/* Delivered before (crash after the rename)? new/NAME, or NAME in cur/. */
static int already_there(const char *dir, int newfd, const char *name, struct curset *cs)
{
	struct stat st;
	if (fstatat(newfd, name, &st, 0) == 0)
		return 1;
	if (!cs->loaded)
		cur_load(dir, cs);
	return cs->n && bsearch(name, cs->ids, cs->n, sizeof(*cs->ids), cmp_id) != NULL;
}

/* Headers and message in one writev (one syscall per file, mostly). */
static int write_file(int fd, const char *headers, const uint8_t *msg, size_t len)
{
	struct iovec v[2] = { { .iov_base = (void *)headers, .iov_len = strlen(headers) },
			      { .iov_base = (void *)msg, .iov_len = len } };
	struct iovec *iov = v;
	int cnt = 2;
	while (cnt > 0) {
		ssize_t w = writev(fd, iov, cnt);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;    /* no progress: do not spin */
		size_t left = (size_t)w;
		for (; cnt > 0 && left >= iov->iov_len; cnt--, iov++)
			left -= iov->iov_len;
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

static void fail(struct dl_item *it, const char *what, int e)
{
	/* A full or broken disk is worth retrying; the operator sees the error. */
	it->result = DL_TEMPFAIL;
	snprintf(it->error, sizeof(it->error), "maildir %s: %s", what, strerror(-e));
}

static int open_dir(const char *dir, const char *sub)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/*
 * Write the whole batch into tmp/, make it durable with one syncfs() (one
 * journal commit instead of one per file), then rename each file into new/
 * and fsync new/ once. A file is in new/ only once its bytes are on disk.
 * Names are resolved against the two folders' descriptors: a full path
 * would be walked again for every open and both sides of every rename.
 */
void deliver_maildir_batch(const char *dir, struct dl_item *items, size_t n)
{
	char name[IL_ID_HEX_LEN + 16];
	int written = 0, renamed = 0, e;
	struct curset cs = { 0 };
	int tmpfd = open_dir(dir, "tmp");
	int newfd = tmpfd < 0 ? tmpfd : open_dir(dir, "new");
	if (tmpfd < 0 || newfd < 0) {
		e = tmpfd < 0 ? tmpfd : newfd;
		for (size_t i = 0; i < n; i++) {
			items[i].backend = NULL;
			fail(&items[i], "open", e);
		}
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct dl_item *it = &items[i];
		file_name(it, name);
		it->result = DL_DONE;
		it->backend = NULL;
		/* Only an item handed over before can be there: checking every
		 * item would read cur/ (all the list's old mail) per batch. */
		if (it->maybe_there && already_there(dir, newfd, name, &cs)) {
			it->backend = (void *)1;        /* nothing to rename */
			continue;
		}
		int fd = openat(tmpfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0) {
			fail(it, "open", -errno);
			continue;
		}
		e = write_file(fd, it->headers, it->msg, it->msg_len);
		if (close(fd) < 0 && e == 0)
			e = -errno;
		if (e < 0) {
			unlinkat(tmpfd, name, 0);
			fail(it, "write", e);
			continue;
		}
		written++;
	}
	if (written && syncfs(tmpfd) < 0) {
		e = -errno;
		for (size_t i = 0; i < n; i++)
			if (items[i].result == DL_DONE && !items[i].backend)
				fail(&items[i], "sync", e);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct dl_item *it = &items[i];
		if (it->result != DL_DONE || it->backend)
			continue;
		file_name(it, name);
		if (renameat(tmpfd, name, newfd, name) < 0) {
			e = -errno;
			unlinkat(tmpfd, name, 0);
			fail(it, "rename", e);
			continue;
		}
		renamed++;
	}
	if (renamed && fsync(newfd) < 0) {
		e = -errno;
		for (size_t i = 0; i < n; i++)
			if (items[i].result == DL_DONE)
				fail(&items[i], "fsync", e);
	}
out:
	for (size_t i = 0; i < n; i++)
		items[i].backend = NULL;
	if (tmpfd >= 0)
		close(tmpfd);
	if (newfd >= 0)
		close(newfd);
	free(cs.ids);
}
