/*
 * check.h — the unit tests' assertions. A failed CHECK prints where and goes
 * on; check_done() returns the process exit status (meson counts it).
 */
#ifndef IL_CHECK_H
#define IL_CHECK_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                  \
	do {                                                                         \
		check_count++;                                                       \
		if (!(cond)) {                                                       \
			check_failures++;                                            \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
				#cond);                                              \
		}                                                                    \
	} while (0)

#define CHECK_EQ(a, b)                                                               \
	do {                                                                         \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);      \
		check_count++;                                                       \
		if (check_a_ != check_b_) {                                          \
			check_failures++;                                            \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n", \
				__FILE__, __LINE__, #a, #b, check_a_, check_b_);     \
		}                                                                    \
	} while (0)

#define CHECK_STR(a, b)                                                              \
	do {                                                                         \
		const char *check_a_ = (a), *check_b_ = (b);                         \
		check_count++;                                                       \
		if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {    \
			check_failures++;                                            \
			fprintf(stderr, "%s:%d: CHECK_STR failed: \"%s\" != \"%s\"\n", \
				__FILE__, __LINE__, check_a_ ? check_a_ : "(null)",  \
				check_b_ ? check_b_ : "(null)");                     \
		}                                                                    \
	} while (0)

static inline int check_done(const char *name)
{
	fprintf(stderr, "%s: %d checks, %d failed\n", name, check_count, check_failures);
	return check_failures ? 1 : 0;
}

static char check_tmp[64];

static inline int check_rm_one(const char *path, const struct stat *sb, int flag,
			       struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* A passing test leaves nothing behind; a failing one keeps its files for a
 * look (the path is in its output). */
static inline void check_tmp_cleanup(void)
{
	if (check_failures == 0 && check_tmp[0])
		nftw(check_tmp, check_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	else if (check_tmp[0])
		fprintf(stderr, "kept %s\n", check_tmp);
}

/* A fresh temporary folder for a test's real files, removed at exit. */
static inline char *check_tmpdir(void)
{
	snprintf(check_tmp, sizeof(check_tmp), "/tmp/il-test-XXXXXX");
	if (!mkdtemp(check_tmp)) {
		perror("mkdtemp");
		exit(2);
	}
	atexit(check_tmp_cleanup);
	return check_tmp;
}

#endif
