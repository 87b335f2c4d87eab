/* log.c — single-line key=value events on stderr. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "il/log.h"
#include "il/util.h"

static char log_relay[IL_ID_MAX + 1] = "-";
/* Set by a reload on the loop, read by every thread that logs. */
static _Atomic int log_level = IL_LOG_INFO;

static const char *level_names[] = { "error", "warn", "info", "debug" };

#define LOG_BATCH_MAX (64 * 1024)

static _Thread_local char *batch;       /* NULL: write each line at once */
static _Thread_local size_t batch_len;

void log_batch_start(void)
{
	if (!batch)
		batch = malloc(LOG_BATCH_MAX);  /* no memory: lines go out one by one */
	batch_len = 0;
}

void log_flush(void)
{
	size_t off = 0;
	if (!batch || batch_len == 0)
		return;
	/* Under stderr's lock, which every other thread's fwrite takes too:
	 * on a pipe (journald) a write this big is not atomic, and a line of
	 * another thread could otherwise land in the middle of one of ours. */
	flockfile(stderr);
	while (off < batch_len) {
		ssize_t w = write(STDERR_FILENO, batch + off, batch_len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;          /* nowhere to complain to: drop the rest */
		off += (size_t)w;
	}
	funlockfile(stderr);
	batch_len = 0;
}

void log_batch_stop(void)
{
	log_flush();
	free(batch);
	batch = NULL;
}

void log_init(const char *relay_id, enum il_log_level level)
{
	if (relay_id)
		snprintf(log_relay, sizeof(log_relay), "%s", relay_id);
	log_level = level;
}

void log_set_level(enum il_log_level level) { log_level = level; }

int log_enabled(enum il_log_level level) { return (int)level <= log_level; }

void log_event(enum il_log_level level, const char *sub, const char *event, const char *fmt, ...)
{
	if ((int)level > log_level)
		return;
	char line[2048], ts[32];
	util_time_str(util_now_ms(), ts);
	int n = snprintf(line, sizeof(line), "ts=%s level=%s relay=%s sub=%s event=%s", ts,
			 level_names[level], log_relay, sub, event);
	if (n < 0)
		return;
	if (fmt && *fmt && (size_t)n < sizeof(line) - 2) {
		line[n++] = ' ';
		va_list ap;
		va_start(ap, fmt);
		int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		va_end(ap);
		if (m > 0)
			n += m;
	}
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (batch) {
		if (batch_len + (size_t)n > LOG_BATCH_MAX)
			log_flush();
		memcpy(batch + batch_len, line, (size_t)n);
		batch_len += (size_t)n;
		return;
	}
	/* One write per line, under stderr's lock (log_flush takes it too), so
	 * concurrent threads never interleave within a line. */
	fwrite(line, 1, (size_t)n, stderr);
}

const char *log_q(const char *v)
{
	static _Thread_local char ring[8][512];
	static _Thread_local unsigned idx;
	if (!v)
		return "null";
	int plain = *v != 0;
	for (const char *p = v; *p; p++)
		if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20)
			plain = 0;
	if (plain)
		return v;
	char *b = ring[idx++ % 8];
	size_t o = 0;
	b[o++] = '"';
	for (const char *p = v; *p && o < 505; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\') {
			b[o++] = '\\';
			b[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(b + o, 6, "\\x%02x", c);
		} else {
			b[o++] = (char)c;
		}
	}
	b[o++] = '"';
	b[o] = 0;
	return b;
}
