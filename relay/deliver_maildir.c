/*
 * deliver_maildir.c — a real Maildir: a batch's files are written, synced
 * once, then made visible in new/NAME, and synced again, before the batch is
 * recorded. NAME is derived from the envelope id, so a crash between the
 * file's appearance and the store's record finds it there (in new/, or in
 * cur/ once a reader has seen it) and does not write a second copy.
 *
 * A file is written without a name (O_TMPFILE in tmp/) and linked into new/
 * once its bytes are on disk: no directory entry is made in tmp/ and taken
 * out again for every message (docs/performance.md, "Seventh session"). Where
 * the kernel or the filesystem cannot (O_TMPFILE refused, or linking an open
 * file refused and no /proc), the classic way: tmp/NAME, renamed into new/.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "il/envelope.h"
#include "il/log.h"
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

/* Unnamed files, until the first sign that this system has none (for every
 * list: one flag, shared by the pool's threads). */
static atomic_int unnamed_off;

static void unnamed_stop(const char *why, int e)
{
	if (!atomic_exchange(&unnamed_off, 1))
		log_warn("deliver", "maildir_unnamed_off", "reason=%s err=%s", why,
			 log_q(strerror(-e)));
}

/*
 * Unnamed files stay open until they are linked, after the batch's first
 * sync. All batches together hold at most half the process's descriptors
 * (its soft limit: 512 of the usual 1024, four pool threads with a full
 * batch of 128 each); a batch that gets fewer writes the rest the classic
 * way. The limit is left as it is, so the programs an exec: delivery runs
 * inherit the usual one.
 */
static atomic_long unnamed_held;

static size_t unnamed_reserve(size_t want)
{
	static atomic_long budget;
	long b = atomic_load(&budget);
	if (b == 0) {
		struct rlimit rl;
		b = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
			    ? (long)(rl.rlim_cur / 2) : 512;
		atomic_store(&budget, b > 0 ? b : 1);
	}
	long before = atomic_fetch_add(&unnamed_held, (long)want);
	long got = b - before;
	got = got < 0 ? 0 : got > (long)want ? (long)want : got;
	if ((size_t)got < want)
		atomic_fetch_sub(&unnamed_held, (long)want - got);
	return (size_t)got;
}

static int open_unnamed(int tmpfd)
{
	if (atomic_load(&unnamed_off))
		return -EOPNOTSUPP;
	int fd = openat(tmpfd, ".", O_WRONLY | O_TMPFILE | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	int e = -errno;
	/* EISDIR: a kernel without O_TMPFILE; EOPNOTSUPP: a filesystem. */
	if (e == -EOPNOTSUPP || e == -EISDIR)
		unnamed_stop("no_tmpfile", e);
	return e;
}

/* Give the open file fd the name new/NAME. */
static int link_unnamed(int fd, int newfd, const char *name)
{
	if (linkat(fd, "", newfd, name, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != ENOENT && errno != EPERM)
		return -errno;
	/* Before Linux 6.10 AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the
	 * descriptor's /proc link works for anyone. */
	char p[32];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, p, newfd, name, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	int e = -errno;
	if (access("/proc/self/fd", F_OK) != 0)
		unnamed_stop("no_proc", e);     /* named files from the next batch on */
	return e;
}

/* Write one item: unnamed (its descriptor in *fd, kept) or as tmp/NAME. */
static int write_item(int tmpfd, struct dl_item *it, const char *name, int may_hold, int *fd)
{
	int e;
	*fd = may_hold ? open_unnamed(tmpfd) : -1;
	if (*fd >= 0) {
		if ((e = write_file(*fd, it->headers, it->msg, it->msg_len)) < 0) {
			close(*fd);     /* an unnamed file goes with its descriptor */
			*fd = -1;
		}
		return e;
	}
	int nfd = openat(tmpfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (nfd < 0)
		return -errno;
	e = write_file(nfd, it->headers, it->msg, it->msg_len);
	if (close(nfd) < 0 && e == 0)
		e = -errno;
	if (e < 0)
		unlinkat(tmpfd, name, 0);
	return e;
}

/* Per item: what the batch did with it. */
enum { ITEM_NONE, ITEM_THERE, ITEM_NAMED, ITEM_UNNAMED };

/*
 * Write the whole batch, make it durable with one syncfs() (one pass over
 * the filesystem instead of one sync per file), then give each file its
 * name in new/ and sync again: syncfs() and an fsync of new/ when a file was
 * linked or found there already (a link count is inode metadata an fsync of
 * new/ does not promise to write, and a file found there may be an earlier
 * try's name still in memory only), else an fsync of new/ alone. A file is
 * in new/ only once its bytes are on disk. Names are resolved against the
 * folders' descriptors: a full path would be walked again for every open
 * and both sides of a rename.
 */
void deliver_maildir_batch(const char *dir, struct dl_item *items, size_t n)
{
	char name[IL_ID_HEX_LEN + 16];
	int written = 0, named = 0, linked = 0, there = 0, e;
	size_t held = 0, may_hold = 0;
	struct curset cs = { 0 };
	uint8_t *how = calloc(n ? n : 1, 1);
	int *fds = calloc(n ? n : 1, sizeof(*fds));
	int tmpfd = open_dir(dir, "tmp");
	int newfd = tmpfd < 0 ? tmpfd : open_dir(dir, "new");
	for (size_t i = 0; i < n; i++)
		items[i].backend = NULL;
	if (!how || !fds || tmpfd < 0 || newfd < 0) {
		e = !how || !fds ? -ENOMEM : tmpfd < 0 ? tmpfd : newfd;
		for (size_t i = 0; i < n; i++)
			fail(&items[i], "open", e);
		goto out;
	}
	may_hold = atomic_load(&unnamed_off) ? 0 : unnamed_reserve(n);
	for (size_t i = 0; i < n; i++) {
		struct dl_item *it = &items[i];
		file_name(it, name);
		it->result = DL_DONE;
		fds[i] = -1;
		/* Only an item handed over before can be there: checking every
		 * item would read cur/ (all the list's old mail) per batch. */
		if (it->maybe_there && already_there(dir, newfd, name, &cs)) {
			how[i] = ITEM_THERE;
			there++;
			continue;
		}
		if ((e = write_item(tmpfd, it, name, held < may_hold, &fds[i])) < 0) {
			fail(it, "write", e);
			continue;
		}
		how[i] = fds[i] >= 0 ? ITEM_UNNAMED : ITEM_NAMED;
		held += fds[i] >= 0;
		written++;
	}
	if (written && syncfs(tmpfd) < 0) {
		e = -errno;
		/* Files found there wait too: their sync is the batch's. */
		for (size_t i = 0; i < n; i++) {
			if (how[i] == ITEM_NAMED) {
				file_name(&items[i], name);
				unlinkat(tmpfd, name, 0);
			}
			if (items[i].result == DL_DONE)
				fail(&items[i], "sync", e);
		}
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct dl_item *it = &items[i];
		file_name(it, name);
		if (how[i] == ITEM_UNNAMED) {
			e = link_unnamed(fds[i], newfd, name);
			/* EEXIST: this message's file, made by an earlier try. */
			if (e < 0 && e != -EEXIST)
				fail(it, "link", e);
			linked += e == 0;
			there += e == -EEXIST;
		} else if (how[i] == ITEM_NAMED) {
			if (renameat(tmpfd, name, newfd, name) < 0) {
				e = -errno;
				unlinkat(tmpfd, name, 0);
				fail(it, "rename", e);
				continue;
			}
			named++;
		}
	}
	/* A file found there may be a link or a rename of an earlier try that
	 * never reached the disk (a kill, then a restart without a reboot):
	 * synced too before the batch is recorded. syncfs() reports a failed
	 * journal commit only from Linux 5.17 on; the fsync of new/ does. */
	if ((linked || there) ? syncfs(newfd) < 0 || fsync(newfd) < 0
			      : named && fsync(newfd) < 0) {
		e = -errno;
		for (size_t i = 0; i < n; i++)
			if (items[i].result == DL_DONE)
				fail(&items[i], "sync", e);
	}
out:
	for (size_t i = 0; how && fds && i < n; i++)
		if (how[i] == ITEM_UNNAMED)
			close(fds[i]);
	if (may_hold)
		atomic_fetch_sub(&unnamed_held, (long)may_hold);
	if (tmpfd >= 0)
		close(tmpfd);
	if (newfd >= 0)
		close(newfd);
	free(how);
	free(fds);
	free(cs.ids);
}
