/*
 * metrics.h — the relay's metrics in the Prometheus text exposition format
 * 0.0.4, for the status socket's `metrics` command and, with
 * `metrics_listen = http://HOST:PORT`, an HTTP endpoint (`GET /metrics`) on
 * the loop. Loop thread only, like everything in struct relay.
 */
#ifndef IL_METRICS_H
#define IL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "relay.h"

/* Read the certificates' expiry dates (ours and each peer's pinned one) and,
 * when metrics_listen is set, listen there. Sets r->metrics. A listener that
 * cannot bind is an error (err says why); an unreadable certificate is only
 * logged and left out of the metrics. */
int metrics_start(struct relay *r, char *err, size_t errlen);

/* Close the listener and any connection still open; r->metrics becomes NULL
 * and its memory goes once the last handle is closed. */
void metrics_stop(struct relay *r);

/* Read the certificates' expiry dates again (after a config reload changed
 * peers or certificate paths). The listen address is kept. */
void metrics_reload(struct relay *r);

/* The whole exposition as a malloc'd string (caller frees), *len its length;
 * NULL when out of memory. */
char *metrics_text(struct relay *r, size_t *len);

/* Take a connection that waited for memory (from the tick). */
void metrics_accept_retry(struct relay *r);

/* Record one delivery that took latency_ms from acceptance to done. */
void metrics_observe_delivery(struct list_rt *l, int64_t latency_ms);

#endif
