/*
 * log.h — one line per event on stderr:
 *   ts=2026-11-23T21:00:00.123Z level=warn relay=centr sub=peer event=tls_refused peer=lactld err="..."
 * `sub` and `event` are stable names that operators grep and alert on.
 * Fields are key=value, values with spaces or quotes are quoted and escaped.
 */
#ifndef IL_LOG_H
#define IL_LOG_H

#include "il/config.h"

void log_init(const char *relay_id, enum il_log_level level);
void log_set_level(enum il_log_level level);
int log_enabled(enum il_log_level level);

/* fmt holds the extra key=value fields (values made safe with log_q()). */
void log_event(enum il_log_level level, const char *sub, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * Hold this thread's lines in memory until log_flush(), which writes them
 * with one write(2). The daemon's loop thread does this and flushes once per
 * loop iteration (before it waits for events), so a busy relay writes one
 * syscall per iteration instead of one per line. A line is held for less
 * than an iteration; a kill -9 may lose the lines of the iteration it hits.
 * Other threads keep writing each line at once.
 */
/* Code that answers a client calls log_flush() first, so that the lines of
 * what it did are in the log by the time the client hears back. */
void log_batch_start(void);
void log_flush(void);
void log_batch_stop(void);

/* Quote a value for a key=value field if it needs it. Returns a pointer into
 * one of a small ring of thread-local buffers: valid for a few calls. */
const char *log_q(const char *value);

#define log_err(sub, ev, ...) log_event(IL_LOG_ERROR, sub, ev, __VA_ARGS__)
#define log_warn(sub, ev, ...) log_event(IL_LOG_WARN, sub, ev, __VA_ARGS__)
#define log_info(sub, ev, ...) log_event(IL_LOG_INFO, sub, ev, __VA_ARGS__)
#define log_debug(sub, ev, ...) log_event(IL_LOG_DEBUG, sub, ev, __VA_ARGS__)

#endif
