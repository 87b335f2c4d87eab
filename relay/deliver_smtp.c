/*
 * deliver_smtp.c — `deliver = smtp://HOST:PORT`: hand each message to an
 * SMTP server (the list's posting address at its MTA, or the local MTA) with
 * libcurl's SMTP client.
 *
 * Why a thread per delivery, not curl_multi_socket_action() on the loop:
 * libcurl's SMTP is not fully non-blocking. After the last byte of DATA its
 * done phase sends the final dot and then *blocks* until the server's reply
 * (smtp_done → smtp_block_statemach, in 7.88 and in current curl alike), and
 * closing a connection blocks for the reply to QUIT. The reply to the final
 * dot is exactly when a real MTA runs its filters (seconds, up to the 10
 * minutes RFC 5321 allows), and on the loop that wait would stall every peer
 * and list of the relay. The libuv thread pool is no place for it either:
 * signature checks queue there. So each delivery is one curl_easy_perform()
 * on its own thread, which touches only its job (copies of the addresses
 * and the CRLF message, and the result fields); it hands the finished job
 * back through a locked list and uv_async_send(), like net.c does for nng
 * (docs/architecture.md), and the loop joins the thread, classifies and
 * calls dl_item_finished(). deliver.c bounds the threads per list
 * (max_deliveries).
 *
 * Outcome: curl OK → DL_DONE; a 5xx reply → DL_PERMFAIL (parked); a 4xx
 * reply, a refused or timed-out connection, a TLS failure → DL_TEMPFAIL
 * (retried with backoff). it->error gets the server's last reply line and
 * curl's error text.
 *
 * Lifetime: deliver_smtp_init() sets up the wake-up handle of the list;
 * deliver.c calls deliver_smtp_fini() only once no delivery of the list is
 * in flight, so every thread has been joined by then. curl_global_init() is
 * reference counted across lists and runs on the loop before any thread.
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
 * retry in wall-clock time: refresh the cache first, or the timer fires
 * before the retry is due when a callback ran long. */
static void item_done(struct dl_item *it)
{
	uv_update_time(dl_loop(it));
	dl_item_finished(it);
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
 * a host that does not answer is retried later anyway. The total bounds how
 * long a shutdown can wait for a delivery under way. */
#define SMTP_CONNECT_TIMEOUT_S 30L
#define SMTP_REPLY_TIMEOUT_S 600L
#define SMTP_TOTAL_TIMEOUT_S 900L

struct smtp_job;

/* One per list with deliver = smtp:// (per deliverer: a reload may run an
 * old and a new one side by side for a while). */
struct smtp_be {
	struct deliverer *d;            /* deliver.c's handle: how items find us */
	uv_async_t wake;                /* a delivery thread has finished */
	uv_mutex_t lock;                /* guards done */
	struct smtp_job *done;          /* finished, not yet reported */
	struct smtp_be *next;
};

/* One delivery. The thread reads the inputs and writes the outputs; the
 * loop touches neither between uv_thread_create() and taking the job off
 * be->done (the mutex orders the two sides). */
struct smtp_job {
	struct dl_item *it;             /* loop only */
	struct smtp_be *be;
	uv_thread_t thread;
	/* inputs */
	char url[300];
	char *mail_from, *rcpt;
	long use_ssl, verify;
	char *data;                     /* relay headers + message, CRLF line ends */
	size_t len, off;
	/* outputs */
	CURLcode res;
	int setup_failed;               /* curl refused an option: not the server */
	long code;                      /* the server's last reply code */
	char reply[160];                /* and its line */
	char errbuf[CURL_ERROR_SIZE];
	struct smtp_job *next;          /* in be->done */
};

/* Loop thread only: deliver.h gives an item no way to its list's backend
 * state, so items find it by their deliverer. */
static struct smtp_be *smtp_backends;
static int smtp_curl_users;

static struct smtp_be *be_find(const struct deliverer *d)
{
	for (struct smtp_be *be = smtp_backends; be; be = be->next)
		if (be->d == d)
			return be;
	return NULL;
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
	free(j->mail_from);
	free(j->rcpt);
	free(j->data);
	free(j);
}

/* ---- the delivery thread: the job and curl, nothing else ---- */

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

static CURLcode job_perform(struct smtp_job *j)
{
	CURL *c = curl_easy_init();
	if (!c)
		return CURLE_OUT_OF_MEMORY;
	struct curl_slist *rcpt = curl_slist_append(NULL, j->rcpt);
	CURLcode r = rcpt ? CURLE_OK : CURLE_OUT_OF_MEMORY;
#define SET(opt, val) \
	do { if (r == CURLE_OK) r = curl_easy_setopt(c, opt, val); } while (0)
	SET(CURLOPT_URL, j->url);
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "smtp");
#endif
	SET(CURLOPT_MAIL_FROM, j->mail_from);
	SET(CURLOPT_MAIL_RCPT, rcpt);
	SET(CURLOPT_UPLOAD, 1L);
	SET(CURLOPT_READFUNCTION, on_read);
	SET(CURLOPT_READDATA, j);
	SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)j->len);
	SET(CURLOPT_HEADERFUNCTION, on_reply);
	SET(CURLOPT_HEADERDATA, j);
	SET(CURLOPT_ERRORBUFFER, j->errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);      /* no alarm() for DNS timeouts: threads */
	SET(CURLOPT_USE_SSL, j->use_ssl);
	/* Opportunistic STARTTLS guards against passive listeners only: most
	 * MTAs present certificates no CA signed, and refusing them would
	 * stop mail that plain text would carry. `required` verifies. */
	SET(CURLOPT_SSL_VERIFYPEER, j->verify);
	SET(CURLOPT_SSL_VERIFYHOST, j->verify ? 2L : 0L);
	SET(CURLOPT_CONNECTTIMEOUT, SMTP_CONNECT_TIMEOUT_S);
	SET(CURLOPT_SERVER_RESPONSE_TIMEOUT, SMTP_REPLY_TIMEOUT_S);
	SET(CURLOPT_TIMEOUT, SMTP_TOTAL_TIMEOUT_S);
#undef SET
	if (r == CURLE_OK)
		r = curl_easy_perform(c);
	else
		j->setup_failed = 1;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &j->code);
	curl_easy_cleanup(c);   /* sends QUIT and waits for it: fine here */
	curl_slist_free_all(rcpt);
	return r;
}

static void smtp_thread(void *arg)
{
	struct smtp_job *j = arg;
	struct smtp_be *be = j->be;
	j->res = job_perform(j);
	uv_mutex_lock(&be->lock);
	j->next = be->done;
	be->done = j;
	uv_mutex_unlock(&be->lock);
	uv_async_send(&be->wake);
}

/* ---- back on the loop ---- */

static void job_classify(struct smtp_job *j)
{
	struct dl_item *it = j->it;
	if (j->res == CURLE_OK) {
		it->result = DL_DONE;
		it->error[0] = 0;
		return;
	}
	if (j->setup_failed) {
		/* This libcurl lacks something we ask for (SMTP, TLS): every
		 * delivery of the list will fail the same way until fixed. */
		it->result = DL_TEMPFAIL;
		set_error(it, "smtp: libcurl: %s", curl_easy_strerror(j->res));
		log_err("deliver", "smtp_setup_failed", "list=%s err=%s", dl_list(it)->name,
			log_q(it->error));
		return;
	}
	/* Only a 5xx reply is the server's final word; anything without one
	 * (refused, timed out, TLS, cut off) may work next time. */
	it->result = j->code >= 500 && j->code <= 599 ? DL_PERMFAIL : DL_TEMPFAIL;
	const char *why = j->errbuf[0] ? j->errbuf : curl_easy_strerror(j->res);
	if (j->code >= 400 && j->reply[0])
		set_error(it, "smtp %s (curl: %s)", j->reply, why);
	else if (j->code >= 400)
		set_error(it, "smtp %ld (curl: %s)", j->code, why);
	else
		set_error(it, "smtp: %s", why);
}

static void on_wake(uv_async_t *h)
{
	struct smtp_be *be = h->data;
	uv_mutex_lock(&be->lock);
	struct smtp_job *list = be->done;
	be->done = NULL;
	uv_mutex_unlock(&be->lock);
	/* Oldest first: the list was built by pushing on the front. */
	struct smtp_job *fifo = NULL;
	while (list) {
		struct smtp_job *j = list;
		list = j->next;
		j->next = fifo;
		fifo = j;
	}
	while (fifo) {
		struct smtp_job *j = fifo;
		fifo = j->next;
		/* The thread has handed the job over and is returning. */
		uv_thread_join(&j->thread);
		struct dl_item *it = j->it;
		job_classify(j);
		it->backend = NULL;
		job_free(j);
		item_done(it);
	}
}

/* SMTP wants CRLF: relay headers then the message, each LF (not already
 * after a CR) becoming CRLF. The stored message has LF line ends. */
static char *to_crlf(const char *hdr, const uint8_t *msg, size_t msg_len, size_t *out_len)
{
	size_t hlen = strlen(hdr), extra = 0;
	const char *parts[2] = { hdr, (const char *)msg };
	const size_t lens[2] = { hlen, msg_len };
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

/* The thread's inputs, copied: nothing it reads belongs to anyone else. */
static int job_setup(struct smtp_job *j, const struct il_list_conf *lc)
{
	char host[256];
	uint16_t port;
	int e = config_split_hostport(lc->deliver_target, host, sizeof(host), &port);
	if (e < 0)
		return e;
	snprintf(j->url, sizeof(j->url), strchr(host, ':') ? "smtp://[%s]:%u" : "smtp://%s:%u",
		 host, (unsigned)port);
	j->use_ssl = CURLUSESSL_TRY;
	if (lc->smtp_tls == IL_SMTP_TLS_OFF)
		j->use_ssl = CURLUSESSL_NONE;
	if (lc->smtp_tls == IL_SMTP_TLS_REQUIRED) {
		j->use_ssl = CURLUSESSL_ALL;
		j->verify = 1;
	}
	if (!(j->mail_from = strdup(lc->mail_from)) || !(j->rcpt = strdup(lc->rcpt)))
		return -ENOMEM;
	if (!(j->data = to_crlf(j->it->headers, j->it->msg, j->it->msg_len, &j->len)))
		return -ENOMEM;
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
	if (e == 0)
		e = uv_thread_create(&j->thread, smtp_thread, j);
	if (e < 0) {
		job_free(j);
		finish_later(it, DL_TEMPFAIL, "smtp: %s", il_strerror(e));
		return;
	}
	it->backend = j;
}

int deliver_smtp_init(struct deliverer *d, void **state)
{
	*state = NULL;
	/* dl_loop() reads only it->d: ask it with a stand-in item. */
	struct dl_item probe = { .d = d };
	struct smtp_be *be = calloc(1, sizeof(*be));
	if (!be)
		return -ENOMEM;
	/* Before any delivery thread exists: curl_global_init is not safe to
	 * run beside other curl calls. */
	if (smtp_curl_users == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(be);
		return -ENOMEM;
	}
	smtp_curl_users++;
	be->d = d;
	IL_ASSERT(uv_mutex_init(&be->lock) == 0);
	IL_ASSERT(uv_async_init(dl_loop(&probe), &be->wake, on_wake) == 0);
	be->wake.data = be;
	be->next = smtp_backends;
	smtp_backends = be;
	*state = be;
	return 0;
}

static void be_closed(uv_handle_t *h)
{
	struct smtp_be *be = h->data;
	uv_mutex_destroy(&be->lock);
	free(be);
	if (--smtp_curl_users == 0)
		curl_global_cleanup();
}

void deliver_smtp_fini(void *state)
{
	struct smtp_be *be = state;
	if (!be)
		return;
	/* deliver.c waited for every item, and an item finishes only after its
	 * thread was joined: no thread is left and be->done is empty. */
	IL_ASSERT(be->done == NULL);
	for (struct smtp_be **pp = &smtp_backends; *pp; pp = &(*pp)->next)
		if (*pp == be) {
			*pp = be->next;
			break;
		}
	uv_close((uv_handle_t *)&be->wake, be_closed);
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
