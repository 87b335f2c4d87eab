/*
 * deliver.h — delivery of accepted messages to a list's target.
 *
 * deliver.c schedules: it fetches due deliveries from the store, hands them
 * to the list's backend and records each outcome (done: never repeated;
 * temporary failure: deferred with capped exponential backoff; permanent:
 * parked). Backends come in two shapes:
 *  - batch (maildir): a thread-pool job writes a whole batch, file I/O only;
 *  - async (smtp, exec): one delivery at a time per item, driven by the loop,
 *    up to the list's max_deliveries at once; the backend calls
 *    dl_item_finished() on the loop when the item is done.
 */
#ifndef IL_DELIVER_H
#define IL_DELIVER_H

#include "relay.h"

struct deliverer;

/* One message to hand over: the relay headers and the original bytes. */
struct dl_item {
	struct deliverer *d;
	int64_t seq;
	uint8_t id[IL_SHA256_LEN];
	char *headers;                  /* X-Interlist-* block, LF endings */
	uint8_t *msg;                   /* owned; LF endings */
	size_t msg_len;
	int attempts;
	int maybe_there;                /* may have been delivered already: backends check */
	int64_t accepted_ms;            /* when the message was stored here (latency metric) */
	int result;                     /* DL_DONE, DL_TEMPFAIL, DL_PERMFAIL */
	char error[200];
	void *backend;                  /* the backend's per-item state */
	struct dl_item *next;           /* in-flight list (async backends) */
};

enum { DL_DONE = 0, DL_TEMPFAIL = 1, DL_PERMFAIL = 2 };

/* The loop and list a delivery belongs to (for async backends). */
uv_loop_t *dl_loop(const struct dl_item *it);
const struct il_list_conf *dl_list(const struct dl_item *it);

/* Async backends call this on the loop once it->result/error are set. */
void dl_item_finished(struct dl_item *it);

/* Maildir: runs on the thread pool; files only, no loop or store state. */
void deliver_maildir_batch(const char *dir, struct dl_item *items, size_t n);
int deliver_maildir_prepare(const char *dir);

/* SMTP (deliver_smtp.c) and exec (deliver_exec.c): start one delivery. */
void deliver_smtp_start(struct dl_item *it);
void deliver_exec_start(struct dl_item *it);
/* Backend-wide setup/teardown (curl multi handle etc.), once per list. */
int deliver_smtp_init(struct deliverer *d, void **state);
void deliver_smtp_fini(void *state);

/* The X-Interlist-* headers every delivery method prepends (malloc'd). */
char *deliver_relay_headers(const struct il_envelope *env);

#endif
