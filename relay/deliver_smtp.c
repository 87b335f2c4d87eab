/*
 * deliver_smtp.c — `deliver = smtp://HOST:PORT`: hand each message to an
 * SMTP server (the list's posting address at its MTA, or the local MTA) with
 * libcurl's SMTP client.
 *
 * Everything runs on the loop thread and nothing blocks it: one curl multi
 * handle per list is driven by curl_multi_socket_action() from uv_poll_t
 * handles (one per socket curl asks us to watch, CURLMOPT_SOCKETFUNCTION)
 * and one uv_timer_t (CURLMOPT_TIMERFUNCTION). Each delivery is one easy
 * handle in that multi; deliver.c bounds how many run at once
 * (max_deliveries). Finished transfers are collected after every
 * socket_action call and reported with dl_item_finished().
 *
 * Outcome: curl OK → DL_DONE; a 5xx reply → DL_PERMFAIL (parked); a 4xx
 * reply, a refused or timed-out connection, a TLS failure → DL_TEMPFAIL
 * (retried with backoff). it->error gets the server's last reply line and
 * curl's error text.
 *
 * Lifetime: deliver_smtp_init() makes the multi handle and the timer;
 * deliver.c calls deliver_smtp_fini() only once no delivery of the list is
 * in flight. fini cleans the multi up (closing cached connections, which
 * closes their poll handles) and closes the timer; the state is freed in the
 * last close callback. curl_global_init() is reference counted across lists.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "il/error.h"
#include "il/log.h"
#include "il_build.h"
#include "deliver.h"

#if HAVE_LIBCURL
#include <curl/curl.h>
#endif

/* deliver.c arms its retry timer from the loop's cached time but records the
 * retry in wall-clock time: refresh the cache first, or a callback that ran
 * long (a TLS handshake) makes the timer fire before the retry is due, and
 * nothing would wake the list again. */
static void item_done(struct dl_item *it)
{
	uv_update_time(dl_loop(it));
	dl_item_finished(it);
}

/* Finish an item on a later loop turn. deliver.c's scheduler starts items in
 * a loop over fetched rows: finishing inside deliver_smtp_start() would
 * re-enter it and fetch rows it is about to start a second time. */
struct smtp_later {
	uv_timer_t timer;
	struct dl_item *it;
};

static void later_closed(uv_handle_t *h)
{
	struct smtp_later *l = h->data;
	struct dl_item *it = l->it;
	free(l);
	item_done(it);
}

static void later_fire(uv_timer_t *t)
{
	uv_close((uv_handle_t *)t, later_closed);
}

/* it->error, cut to fit (the store keeps it, status shows it) and reduced to
 * printable ASCII: it goes to logs, the store and JSON. */
static void verror(struct dl_item *it, const char *fmt, va_list ap)
{
	vsnprintf(it->error, sizeof(it->error), fmt, ap);
	for (char *s = it->error; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = ' ';
}

static void finish_later(struct dl_item *it, int result, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void finish_later(struct dl_item *it, int result, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verror(it, fmt, ap);
	va_end(ap);
	it->result = result;
	struct smtp_later *l = calloc(1, sizeof(*l));
	IL_ASSERT(l);   /* same policy as deliver.c's item allocations */
	l->it = it;
	l->timer.data = l;
	IL_ASSERT(uv_timer_init(dl_loop(it), &l->timer) == 0);
	IL_ASSERT(uv_timer_start(&l->timer, later_fire, 0, 0) == 0);
}

#if HAVE_LIBCURL

/* RFC 5321 4.5.3.2 asks a client to wait minutes for some replies (10 min
 * after the final dot); curl's default of 2 minutes per reply would turn a
 * slow but working server into endless retries. The connect limit is short:
 * a host that does not answer is retried later anyway. */
#define SMTP_CONNECT_TIMEOUT_S 30L
#define SMTP_REPLY_TIMEOUT_S 300L
#define SMTP_TOTAL_TIMEOUT_S 900L

struct smtp_sock;

/* One per list with deliver = smtp://. */
struct smtp_be {
	struct deliverer *d;            /* deliver.c's handle: how items find us */
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;               /* curl's timeout */
	struct smtp_sock *socks;        /* poll handles open (closing ones unlinked) */
	int handles;                    /* uv handles not yet closed; freed at 0 */
	struct smtp_be *next;
};

/* A socket curl asked us to watch. */
struct smtp_sock {
	uv_poll_t poll;
	curl_socket_t fd;
	struct smtp_be *be;
	struct smtp_sock *prev, *next;
};

/* One delivery in flight: an easy handle in be->multi. */
struct smtp_job {
	struct dl_item *it;
	struct smtp_be *be;
	CURL *easy;
	struct curl_slist *rcpt;
	char *data;                     /* relay headers + message, CRLF line ends */
	size_t len, off;
	char reply[160];                /* the server's last reply line */
	char errbuf[CURL_ERROR_SIZE];
};

/* Loop thread only: deliver.h gives an item no way to its list's backend
 * state, so items find it by their deliverer. A reload can run an old and a
 * new deliverer of one list side by side; each has its own entry. */
static struct smtp_be *smtp_backends;
static int smtp_curl_users;

static struct smtp_be *be_find(const struct deliverer *d)
{
	for (struct smtp_be *be = smtp_backends; be; be = be->next)
		if (be->d == d)
			return be;
	return NULL;
}

static int curl_acquire(void)
{
	if (smtp_curl_users == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -ENOMEM;
	smtp_curl_users++;
	return 0;
}

static void curl_release(void)
{
	if (--smtp_curl_users == 0)
		curl_global_cleanup();
}

static void be_unref(struct smtp_be *be)
{
	if (--be->handles > 0)
		return;
	free(be);
	curl_release();
}

static void handle_closed(uv_handle_t *h)
{
	be_unref(h->data);
}

static void sock_closed(uv_handle_t *h)
{
	struct smtp_sock *sk = h->data;
	struct smtp_be *be = sk->be;
	free(sk);
	be_unref(be);
}

static void sock_close(struct smtp_sock *sk)
{
	struct smtp_be *be = sk->be;
	if (sk->prev)
		sk->prev->next = sk->next;
	else
		be->socks = sk->next;
	if (sk->next)
		sk->next->prev = sk->prev;
	uv_poll_stop(&sk->poll);
	uv_close((uv_handle_t *)&sk->poll, sock_closed);
}

static void set_error(struct dl_item *it, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct dl_item *it, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verror(it, fmt, ap);
	va_end(ap);
}

static void job_free(struct smtp_job *j)
{
	if (j->easy) {
		curl_multi_remove_handle(j->be->multi, j->easy);
		curl_easy_cleanup(j->easy);
	}
	curl_slist_free_all(j->rcpt);
	free(j->data);
	free(j);
}

static void job_classify(struct smtp_job *j, CURLcode res)
{
	struct dl_item *it = j->it;
	long code = 0;
	if (res == CURLE_OK) {
		it->result = DL_DONE;
		it->error[0] = 0;
		return;
	}
	curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
	/* Only a 5xx reply is the server's final word; anything without one
	 * (refused, timed out, TLS, cut off) may work next time. */
	it->result = code >= 500 && code <= 599 ? DL_PERMFAIL : DL_TEMPFAIL;
	const char *why = j->errbuf[0] ? j->errbuf : curl_easy_strerror(res);
	if (code >= 400 && j->reply[0])
		set_error(it, "smtp %s (curl: %s)", j->reply, why);
	else if (code >= 400)
		set_error(it, "smtp %ld (curl: %s)", code, why);
	else
		set_error(it, "smtp: %s", why);
}

/* Report every finished transfer. dl_item_finished() may start new ones on
 * this multi (allowed here: we are not inside a curl callback). */
static void collect_done(struct smtp_be *be)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(be->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *easy = m->easy_handle;
		CURLcode res = m->data.result;   /* m is invalid after remove_handle */
		struct smtp_job *j = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&j);
		IL_ASSERT(j && j->easy == easy);
		struct dl_item *it = j->it;
		job_classify(j, res);
		it->backend = NULL;
		job_free(j);
		item_done(it);
	}
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct smtp_sock *sk = h->data;
	struct smtp_be *be = sk->be;
	int flags = 0, running = 0;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(be->multi, sk->fd, flags, &running);
	collect_done(be);
}

static void on_timeout(uv_timer_t *t)
{
	struct smtp_be *be = t->data;
	int running = 0;
	curl_multi_socket_action(be->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	collect_done(be);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what curl wants, or stop. */
static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	(void)easy;
	struct smtp_be *be = userp;
	struct smtp_sock *sk = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (sk)
			sock_close(sk);
		return 0;
	}
	if (!sk) {
		if (!(sk = calloc(1, sizeof(*sk))))
			return -1;      /* curl fails the transfers on this multi */
		if (uv_poll_init_socket(be->loop, &sk->poll, s) < 0) {
			free(sk);
			return -1;
		}
		sk->fd = s;
		sk->be = be;
		sk->poll.data = sk;
		sk->next = be->socks;
		if (be->socks)
			be->socks->prev = sk;
		be->socks = sk;
		be->handles++;
		curl_multi_assign(be->multi, s, sk);
	}
	int ev = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
	return uv_poll_start(&sk->poll, ev, on_poll) == 0 ? 0 : -1;
}

/* CURLMOPT_TIMERFUNCTION: curl must not be called from inside it, so the
 * timeout (0 included) fires from the loop. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	struct smtp_be *be = userp;
	if (timeout_ms < 0)
		return uv_timer_stop(&be->timer) == 0 ? 0 : -1;
	return uv_timer_start(&be->timer, on_timeout, (uint64_t)timeout_ms, 0) == 0 ? 0 : -1;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *userp)
{
	struct smtp_job *j = userp;
	size_t n = size * nitems, left = j->len - j->off;
	if (n > left)
		n = left;
	memcpy(buf, j->data + j->off, n);
	j->off += n;
	return n;
}

/* curl passes each server reply line to the header callback; keep the last
 * one, which after a failure is the refusal. */
static size_t on_reply(char *buf, size_t size, size_t nitems, void *userp)
{
	struct smtp_job *j = userp;
	size_t n = size * nitems, k = n;
	while (k && (buf[k - 1] == '\n' || buf[k - 1] == '\r'))
		k--;
	if (k >= sizeof(j->reply))
		k = sizeof(j->reply) - 1;
	memcpy(j->reply, buf, k);
	j->reply[k] = 0;
	return n;
}

/* SMTP wants CRLF: relay headers then the message, each LF (not already
 * after a CR) becoming CRLF. The stored message has LF line ends. */
static char *to_crlf(const char *hdr, const uint8_t *msg, size_t msg_len, size_t *out_len)
{
	size_t hlen = strlen(hdr), extra = 0;
	const char *parts[2] = { hdr, (const char *)msg };
	size_t lens[2] = { hlen, msg_len };
	for (int p = 0; p < 2; p++)
		for (size_t i = 0; i < lens[p]; i++)
			extra += parts[p][i] == '\n';
	char *out = malloc(hlen + msg_len + extra + 1);
	if (!out)
		return NULL;
	size_t n = 0;
	char prev = 0;
	for (int p = 0; p < 2; p++)
		for (size_t i = 0; i < lens[p]; i++) {
			char c = parts[p][i];
			if (c == '\n' && prev != '\r')
				out[n++] = '\r';
			out[n++] = c;
			prev = c;
		}
	*out_len = n;
	return out;
}

static int job_setup(struct smtp_job *j, const struct il_list_conf *lc)
{
	char host[256], url[300];
	uint16_t port;
	int e = config_split_hostport(lc->deliver_target, host, sizeof(host), &port);
	if (e < 0)
		return e;
	snprintf(url, sizeof(url), strchr(host, ':') ? "smtp://[%s]:%u" : "smtp://%s:%u", host,
		 (unsigned)port);
	if (!(j->rcpt = curl_slist_append(NULL, lc->rcpt)))
		return -ENOMEM;
	if (!(j->data = to_crlf(j->it->headers, j->it->msg, j->it->msg_len, &j->len)))
		return -ENOMEM;
	if (!(j->easy = curl_easy_init()))
		return -ENOMEM;
	CURL *c = j->easy;
	long use_ssl = CURLUSESSL_TRY, verify = 0;
	if (lc->smtp_tls == IL_SMTP_TLS_OFF)
		use_ssl = CURLUSESSL_NONE;
	if (lc->smtp_tls == IL_SMTP_TLS_REQUIRED) {
		use_ssl = CURLUSESSL_ALL;
		verify = 1;
	}
	/* curl copies string options; rcpt and data stay ours until job_free. */
	CURLcode r = CURLE_OK;
#define SET(opt, val) \
	do { if (r == CURLE_OK) r = curl_easy_setopt(c, opt, val); } while (0)
	SET(CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "smtp");
#endif
	SET(CURLOPT_MAIL_FROM, lc->mail_from);
	SET(CURLOPT_MAIL_RCPT, j->rcpt);
	SET(CURLOPT_UPLOAD, 1L);
	SET(CURLOPT_READFUNCTION, on_read);
	SET(CURLOPT_READDATA, j);
	SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)j->len);
	SET(CURLOPT_HEADERFUNCTION, on_reply);
	SET(CURLOPT_HEADERDATA, j);
	SET(CURLOPT_ERRORBUFFER, j->errbuf);
	SET(CURLOPT_PRIVATE, j);
	SET(CURLOPT_NOSIGNAL, 1L);      /* threads in this process; SIGPIPE is ignored */
	SET(CURLOPT_USE_SSL, use_ssl);
	/* Opportunistic STARTTLS guards against passive listeners only: most
	 * MTAs present certificates no CA signed, and refusing them would
	 * stop mail that plain text would carry. `required` verifies. */
	SET(CURLOPT_SSL_VERIFYPEER, verify);
	SET(CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
	SET(CURLOPT_CONNECTTIMEOUT, SMTP_CONNECT_TIMEOUT_S);
	SET(CURLOPT_SERVER_RESPONSE_TIMEOUT, SMTP_REPLY_TIMEOUT_S);
	SET(CURLOPT_TIMEOUT, SMTP_TOTAL_TIMEOUT_S);
#undef SET
	if (r != CURLE_OK) {
		log_err("deliver", "smtp_setup_failed", "list=%s err=%s", lc->name,
			log_q(curl_easy_strerror(r)));
		return -EINVAL;
	}
	return 0;
}

void deliver_smtp_start(struct dl_item *it)
{
	struct smtp_be *be = be_find(it->d);
	if (!be) {
		finish_later(it, DL_TEMPFAIL, "smtp: delivery backend not running");
		return;
	}
	struct smtp_job *j = calloc(1, sizeof(*j));
	if (!j) {
		finish_later(it, DL_TEMPFAIL, "smtp: out of memory");
		return;
	}
	j->it = it;
	j->be = be;
	int e = job_setup(j, dl_list(it));
	if (e < 0)
		goto fail;
	CURLMcode mr = curl_multi_add_handle(be->multi, j->easy);
	if (mr != CURLM_OK) {
		curl_easy_cleanup(j->easy);     /* not in the multi: job_free must not remove it */
		j->easy = NULL;
		job_free(j);
		finish_later(it, DL_TEMPFAIL, "smtp: %s", curl_multi_strerror(mr));
		return;
	}
	it->backend = j;
	return;

fail:
	if (j->easy) {
		curl_easy_cleanup(j->easy);
		j->easy = NULL;
	}
	job_free(j);
	finish_later(it, DL_TEMPFAIL, "smtp: %s", il_strerror(e));
}

int deliver_smtp_init(struct deliverer *d, void **state)
{
	*state = NULL;
	/* dl_loop() reads only it->d: ask it with a stand-in item. */
	struct dl_item probe = { .d = d };
	struct smtp_be *be = calloc(1, sizeof(*be));
	if (!be)
		return -ENOMEM;
	int e = curl_acquire();
	if (e < 0)
		goto fail;
	be->d = d;
	be->loop = dl_loop(&probe);
	if (!(be->multi = curl_multi_init())) {
		e = -ENOMEM;
		goto fail_curl;
	}
	curl_multi_setopt(be->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(be->multi, CURLMOPT_SOCKETDATA, be);
	curl_multi_setopt(be->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(be->multi, CURLMOPT_TIMERDATA, be);
	uv_timer_init(be->loop, &be->timer);
	be->timer.data = be;
	be->handles = 1;
	be->next = smtp_backends;
	smtp_backends = be;
	*state = be;
	return 0;

fail_curl:
	curl_release();
fail:
	free(be);
	return e;
}

void deliver_smtp_fini(void *state)
{
	struct smtp_be *be = state;
	if (!be)
		return;
	for (struct smtp_be **pp = &smtp_backends; *pp; pp = &(*pp)->next)
		if (*pp == be) {
			*pp = be->next;
			break;
		}
	/* No transfer is left (deliver.c waits for every item). Cleaning up
	 * closes curl's cached connections, removing their sockets through
	 * on_curl_socket; close whatever poll handle is still open after it. */
	curl_multi_cleanup(be->multi);
	be->multi = NULL;
	while (be->socks)
		sock_close(be->socks);
	uv_timer_stop(&be->timer);
	uv_close((uv_handle_t *)&be->timer, handle_closed);
}

#else /* !HAVE_LIBCURL */

int deliver_smtp_init(struct deliverer *d, void **state)
{
	(void)d;
	*state = NULL;
	return -ENOTSUP;
}

void deliver_smtp_fini(void *state)
{
	(void)state;
}

void deliver_smtp_start(struct dl_item *it)
{
	finish_later(it, DL_TEMPFAIL, "smtp: interlistd was built without libcurl");
}

#endif
