/*
 * deliver.h — delivery of accepted messages to a list's target. deliver.c
 * schedules (fetch due work from the store, hand it to a backend, record the
 * outcome); each backend lives in its own file.
 */
#ifndef IL_DELIVER_H
#define IL_DELIVER_H

#include "relay.h"

/* One message to hand over: the relay headers and the original bytes. */
struct dl_item {
	int64_t seq;
	uint8_t id[IL_SHA256_LEN];
	char *headers;                  /* X-Interlist-* block, LF endings */
	uint8_t *msg;                   /* owned */
	size_t msg_len;
	int attempts;
	int result;                     /* 0 done, 1 temporary failure, 2 permanent */
	char error[160];
};

/* Maildir: runs on the thread pool; files only, no loop or store state. */
void deliver_maildir_batch(const char *dir, struct dl_item *items, size_t n);
int deliver_maildir_prepare(const char *dir);

/* The X-Interlist-* headers every delivery method prepends (malloc'd). */
char *deliver_relay_headers(const struct il_envelope *env);

#endif
