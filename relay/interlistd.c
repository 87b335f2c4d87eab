/*
 * interlistd — the interlist relay daemon.
 *
 * main() is an ordered setup (config, keys, store, status socket, peering,
 * deliveries, signals) followed by uv_run; shutdown runs the same steps in
 * reverse once SIGTERM/SIGINT arrives and in-flight work has finished.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "il/error.h"
#include "il/log.h"
#include "il/util.h"
#include "il_build.h"
#if HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif
#include "metrics.h"
#include "net.h"
#include "relay.h"

#define TICK_MS 500
#define UPKEEP_EVERY_MS (10 * 60 * 1000)
/* Every deliverer looks for due work this often, whatever woke it last: a
 * retry whose wake-up was lost (seen once: a program delivery deferred for
 * 1 s waited 30 s, until another list's traffic kicked it) is late by this
 * much at most, not until the next post. One indexed query per list. */
#define DELIVERY_SWEEP_MS 2000

static void usage(FILE *f)
{
	fprintf(f, "usage: interlistd [-c FILE]   (default %s)\n", IL_DEFAULT_CONFIG);
}

static void expired_cb(void *arg, const char *peer, uint64_t n)
{
	struct relay *r = arg;
	r->c.expired += n;
	log_warn("peer", "queue_expired", "peer=%s messages=%llu", peer, (unsigned long long)n);
}

/* Retention: unacknowledged queue entries and old messages go. */
static void upkeep(struct relay *r)
{
	int64_t cutoff = util_now_ms() - (int64_t)r->cfg->retention_days * 86400000;
	uint64_t pruned = 0;
	store_queue_expire(r->store, cutoff, expired_cb, r);
	if (store_prune(r->store, cutoff, &pruned) == 0 && pruned)
		log_info("store", "pruned", "messages=%llu", (unsigned long long)pruned);
}

static int64_t last_upkeep, last_gc, last_sweep;

static void on_log_prepare(uv_prepare_t *h)
{
	struct relay *r = h->data;
	/* Every answered LMTP session was written in the callback that
	 * answered it (relay.h, ingest_ready). */
	IL_ASSERT(!r->ingest_ready);
	log_flush();
}

static void on_tick(uv_timer_t *t)
{
	struct relay *r = t->data;
	int64_t now = util_mono_ms();
	if (r->stopping) {
		/* Let verifications in flight finish and store, answer every post
		 * and batch once its commit is on disk, then take it all down. */
		if (r->verify_jobs > 0)
			return;
		if (!r->submits_closed)
			relay_submit_close(r);  /* sets submits_closed */
		if (durable_busy(r))
			return;
		uv_timer_stop(t);
		uv_close((uv_handle_t *)t, NULL);
		net_stop(r);
		for (size_t i = 0; i < r->n_lists; i++)
			deliver_stop(r->lists[i]);
		return;
	}
	session_tick(r);
	durable_tick(r);
	ingest_accept_retry(r);
	metrics_accept_retry(r);
	status_accept_retry(r);
	/* Often: entries past their expiry still take room until then. */
	if (now - last_gc > 10000) {
		nonce_cache_gc(r->nonces, util_now_ms());
		last_gc = now;
	}
	if (now - last_sweep >= DELIVERY_SWEEP_MS) {
		relay_kick_deliveries(r);
		last_sweep = now;
	}
	if (now - last_upkeep > UPKEEP_EVERY_MS) {
		upkeep(r);
		last_upkeep = now;
	}
}

void relay_stop(struct relay *r)
{
	if (r->stopping)
		return;
	r->stopping = 1;
	log_info("relay", "stopping", "verify_jobs=%d", r->verify_jobs);
#if HAVE_SYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
	status_stop(r);
	metrics_stop(r);
	for (size_t i = 0; i < r->n_lists; i++)
		ingest_stop(r->lists[i]);
	uv_close((uv_handle_t *)&r->sig_term, NULL);
	uv_close((uv_handle_t *)&r->sig_int, NULL);
	uv_close((uv_handle_t *)&r->sig_hup, NULL);
	on_tick(&r->tick);
}

void relay_fatal(struct relay *r, int code)
{
	if (!r->exit_code)
		r->exit_code = code;
	relay_stop(r);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct relay *r = s->data;
	if (signum == SIGHUP) {
		char err[1024];
		log_info("relay", "signal", "signal=HUP");
		relay_reload(r, err, sizeof(err));     /* logs its outcome */
		return;
	}
	log_info("relay", "signal", "signal=%s", signum == SIGTERM ? "TERM" : "INT");
	relay_stop(r);
}

int main(int argc, char **argv)
{
	const char *path = IL_DEFAULT_CONFIG;
	char err[1024];
	int rc = IL_EX_CONFIG, e;
	struct relay r = { 0 };
	struct il_config *cfg = NULL;
	int start_failed = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc) {
			path = argv[++i];
		} else if (!strcmp(argv[i], "--version")) {
			printf("interlistd %s\n", IL_VERSION);
			return 0;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 64;
		}
	}
	signal(SIGPIPE, SIG_IGN);

	if ((e = config_load(path, &cfg, err, sizeof(err))) < 0 ||
	    (e = config_check_files(cfg, err, sizeof(err))) < 0) {
		fprintf(stderr, "%s\n", err);
		goto fail_config;
	}
	if (!(r.trust = trust_new(cfg, err, sizeof(err)))) {
		fprintf(stderr, "%s\n", err);
		goto fail_config;
	}
	r.cfg = cfg;    /* owned by r.trust from here on */
	r.config_path = path;
	log_init(cfg->id, cfg->log_level);
	if ((e = keys_load_private(cfg->sign_key.s, &r.sign_key, err, sizeof(err))) < 0) {
		fprintf(stderr, "%s:%d: sign_key: %s\n", path, cfg->sign_key.line, err);
		goto fail_trust;
	}
	rc = 75;
	r.loop = uv_default_loop();
	r.started_ms = util_now_ms();
	relay_submit_init(&r);
	if ((e = util_random(r.boot, sizeof(r.boot))) < 0)
		goto fail_key;
	if ((e = store_open(cfg->data_dir.s, &r.store, err, sizeof(err))) < 0) {
		log_err("store", "open_failed", "path=%s err=%s", log_q(cfg->data_dir.s), log_q(err));
		rc = e == IL_ENEWER ? 65 : 75;
		goto fail_key;
	}
	if ((e = store_max_seq(r.store, &r.boot_seq)) < 0) {
		log_err("store", "open_failed", "path=%s err=%s", log_q(cfg->data_dir.s),
			log_q(il_strerror(e)));
		goto fail_store;
	}
	/* Group commit with the fsync off the loop; without it (no WAL file to
	 * sync?) every commit syncs itself, slower but just as safe. */
	durable_start(&r);
	if (!(r.nonces = nonce_cache_new()))
		goto fail_store;
	if (relay_lists_sync(&r, cfg) < 0)
		goto fail_nonces;
	if ((e = status_start(&r, err, sizeof(err))) < 0) {
		log_err("status", "start_failed", "err=%s", log_q(err));
		goto fail_lists;
	}
	if ((e = metrics_start(&r, err, sizeof(err))) < 0) {
		log_err("metrics", "start_failed", "err=%s", log_q(err));
		goto fail_status;
	}
	if ((e = net_start(&r, err, sizeof(err))) < 0) {
		log_err("peer", "start_failed", "err=%s", log_q(err));
		goto fail_status;
	}
	for (size_t i = 0; i < r.n_lists; i++) {
		deliver_start(&r, r.lists[i]);
		if ((e = ingest_start(&r, r.lists[i], err, sizeof(err))) < 0) {
			log_err("ingest", "start_failed", "list=%s err=%s", r.lists[i]->conf->name,
				log_q(err));
			start_failed = 1;
		}
	}

	uv_signal_init(r.loop, &r.sig_term);
	uv_signal_init(r.loop, &r.sig_int);
	uv_signal_init(r.loop, &r.sig_hup);
	r.sig_term.data = r.sig_int.data = r.sig_hup.data = &r;
	uv_signal_start(&r.sig_term, on_signal, SIGTERM);
	uv_signal_start(&r.sig_int, on_signal, SIGINT);
	uv_signal_start(&r.sig_hup, on_signal, SIGHUP);
	uv_timer_init(r.loop, &r.tick);
	r.tick.data = &r;
	uv_timer_start(&r.tick, on_tick, TICK_MS, TICK_MS);
	upkeep(&r);
	last_upkeep = last_gc = last_sweep = util_mono_ms();
	if (start_failed)
		relay_stop(&r);         /* an ingest listener could not start */

	log_info("relay", "started", "version=%s peers=%zu lists=%zu listen=%s", IL_VERSION,
		 cfg->n_peers, cfg->n_lists, cfg->listen.s ? cfg->listen.s : "none");
#if HAVE_SYSTEMD
	sd_notify(0, "READY=1");
#endif
	rc = start_failed ? 75 : 0;
	/* Loop-thread log lines go out once per iteration (log.h); unref'd, so
	 * the handle does not keep the loop alive at shutdown. */
	uv_prepare_t log_prep;
	uv_prepare_init(r.loop, &log_prep);
	log_prep.data = &r;
	uv_prepare_start(&log_prep, on_log_prepare);
	uv_unref((uv_handle_t *)&log_prep);
	log_batch_start();
	uv_run(r.loop, UV_RUN_DEFAULT);
	log_batch_stop();
	uv_close((uv_handle_t *)&log_prep, NULL);
	uv_run(r.loop, UV_RUN_NOWAIT);
	if (r.exit_code)
		rc = r.exit_code;
	log_info("relay", "stopped", "uptime_s=%lld", (long long)((util_now_ms() - r.started_ms) / 1000));
	goto fail_lists;

fail_status:
	status_stop(&r);
	metrics_stop(&r);
	net_stop(&r);           /* a failed net_start leaves its handles open */
	for (size_t i = 0; i < r.n_lists; i++)
		deliver_stop(r.lists[i]);
	uv_run(r.loop, UV_RUN_DEFAULT);
fail_lists:
	relay_lists_free(&r);
fail_nonces:
	nonce_cache_free(r.nonces);
fail_store:
	durable_stop(&r);
	store_close(r.store);
fail_key:
	EVP_PKEY_free(r.sign_key);
	uv_loop_close(r.loop);
	/* Join the thread pool now, while OpenSSL is still up: its threads
	 * free their cached signing contexts as they exit, and libuv's own
	 * destructor would run after OpenSSL's atexit cleanup. */
	uv_library_shutdown();
fail_trust:
	trust_release(r.trust);
	return rc;
fail_config:
	config_free(cfg);
	return rc;
}
