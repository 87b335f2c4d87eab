/*
 * status.h — helpers for status socket command handlers (status.c and the
 * operation commands added beside it).
 */
#ifndef IL_STATUS_H
#define IL_STATUS_H

#include <sys/types.h>

#include "relay.h"

struct conn;

/* Send data (ownership taken) as the whole answer, then close. */
void status_answer(struct conn *c, char *data, size_t len);
void status_answerf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int status_peer_uid(struct conn *c, uid_t *uid);
/* Root or the daemon's own user: may change state. */
int status_caller_privileged(struct conn *c);

/* JSON building on a wbuf. */
void jb_printf(struct wbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void jb_str(struct wbuf *b, const char *s);

/* Commands beyond status/submit; returns 1 if it handled cmd. */
int status_extra_command(struct conn *c, struct relay *r, const char *cmd, char *args);

/* failed / retry (status_deliver.c); returns 1 if it handled cmd. */
int status_deliver_command(struct conn *c, struct relay *r, const char *cmd, char *args);

#endif
