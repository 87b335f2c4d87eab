/*
 * deliver_exec.c — `deliver = exec:COMMAND ARGS...`: run a
 * sendmail-compatible program (`/usr/sbin/sendmail -i -- list@example.org`)
 * with the relay headers and the message (LF line ends) on its stdin.
 *
 * No shell: uv_spawn() with the list's exec_argv. The child gets its own
 * session (UV_PROCESS_DETACHED) so that exec_timeout can SIGKILL the whole
 * process group, grandchildren of a wrapper script included, not only the
 * program we started. Everything is driven by the loop: the write to stdin,
 * the read of stderr (its first bytes go into it->error), the exit and the
 * timeout.
 *
 * Outcome: exit 0 → DL_DONE; exit 75 (EX_TEMPFAIL), a signal, the timeout,
 * or a spawn failure that may pass (EAGAIN, EMFILE...) → DL_TEMPFAIL; any
 * other exit, a program that cannot be run (ENOENT, EACCES...), or exit 0
 * without having read the whole message → DL_PERMFAIL (parked, nothing
 * lost). A program that exits without reading makes our write fail with
 * EPIPE (SIGPIPE is ignored in the daemon); its exit code decides.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "il/error.h"
#include "il/log.h"
#include "deliver.h"

#define EXEC_TEMPFAIL 75        /* sysexits.h EX_TEMPFAIL, as sendmail uses it */
#define EXEC_DEFAULT_TIMEOUT_S 60
/* After the exit, how long to wait for stderr's end and our write: a
 * grandchild that keeps the pipes open must not hold the delivery. */
#define EXEC_GRACE_MS 1000
#define EXEC_STDERR_KEEP 200

struct exec_job {
	struct dl_item *it;
	char list[IL_LIST_MAX + 1];     /* for the log line of a kill */
	char prog[64];                  /* argv[0]'s base name, for errors */
	int timeout_s;
	uv_process_t proc;
	uv_pipe_t in, err;
	uv_timer_t timer;
	uv_write_t wreq;
	int open;                       /* handles not yet closed; free at 0 */
	int spawn_err;                  /* uv_spawn() failed with this */
	int exited, timed_out, err_eof, finishing;
	int write_status;               /* 1 while under way, then 0 or a uv error */
	int64_t exit_status;
	int term_signal;
	size_t errlen;
	char errtext[EXEC_STDERR_KEEP + 1];
	char rbuf[512];
};

static void set_error(struct dl_item *it, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct dl_item *it, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(it->error, sizeof(it->error), fmt, ap);
	va_end(ap);
}

/* Printable ASCII only, each run of anything else (newlines) as one space:
 * the text goes to logs, the store and JSON. */
static void clean_text(char *s)
{
	char *o = s;
	int gap = 0;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c > 0x7e) {
			gap = 1;
			continue;
		}
		if (gap && o != s && o[-1] != ' ')
			*o++ = ' ';
		gap = 0;
		*o++ = (char)c;
	}
	*o = 0;
}

/* Spawn errors the next try will meet again. */
static int spawn_permanent(int e)
{
	return e == UV_ENOENT || e == UV_EACCES || e == UV_ENOTDIR || e == UV_ELOOP ||
	       e == UV_ENAMETOOLONG || e == UV_EINVAL || e == UV_EPERM;
}

static void classify(struct exec_job *j)
{
	struct dl_item *it = j->it;
	if (j->spawn_err) {
		it->result = spawn_permanent(j->spawn_err) ? DL_PERMFAIL : DL_TEMPFAIL;
		set_error(it, "exec %s: %s", j->prog, uv_strerror(j->spawn_err));
		goto out;
	}
	/* The real status first: a program that exited 0 just as the timer
	 * fired has the message, whatever our kill did afterwards. */
	if (j->exited && j->term_signal == 0 && j->exit_status == 0) {
		if (j->write_status == 0) {
			it->result = DL_DONE;
			it->error[0] = 0;
			return;
		}
		/* Exit 0 without the whole message: it accepted something, but
		 * not this. Park it for the operator rather than loop on it. */
		it->result = DL_PERMFAIL;
		set_error(it, "exec %s: exit 0 without reading the whole message (%s)", j->prog,
			  j->write_status == 1 ? "stdin still open" : uv_strerror(j->write_status));
	} else if (j->timed_out) {
		it->result = DL_TEMPFAIL;
		set_error(it, "exec %s: killed after exec_timeout %d s", j->prog, j->timeout_s);
	} else if (!j->exited) {
		it->result = DL_TEMPFAIL;       /* cannot happen: we wait for the exit */
		set_error(it, "exec %s: no exit status", j->prog);
	} else if (j->term_signal) {
		it->result = DL_TEMPFAIL;
		set_error(it, "exec %s: killed by signal %d", j->prog, j->term_signal);
	} else if (j->exit_status == EXEC_TEMPFAIL) {
		it->result = DL_TEMPFAIL;
		set_error(it, "exec %s: exit %d (temporary failure)", j->prog, EXEC_TEMPFAIL);
	} else {
		it->result = DL_PERMFAIL;
		set_error(it, "exec %s: exit %lld", j->prog, (long long)j->exit_status);
	}
out:
	if (j->errlen) {
		j->errtext[j->errlen] = 0;
		size_t n = strlen(it->error);
		snprintf(it->error + n, sizeof(it->error) - n, ": %s", j->errtext);
	}
	clean_text(it->error);
}

static void job_closed(uv_handle_t *h)
{
	struct exec_job *j = h->data;
	if (--j->open > 0)
		return;
	struct dl_item *it = j->it;
	it->backend = NULL;
	free(j);
	/* deliver.c arms its retry timer from the loop's cached time but records
	 * the retry in wall-clock time: refresh the cache so that the timer does
	 * not fire before the retry is due. */
	uv_update_time(dl_loop(it));
	dl_item_finished(it);
}

static void close_once(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, job_closed);
}

/* Decide and close everything; dl_item_finished() runs in the last close
 * callback, so never from inside deliver_exec_start(). Closing stdin cancels
 * a write still under way (its callback gets UV_ECANCELED). */
static void finish(struct exec_job *j)
{
	if (j->finishing)
		return;
	j->finishing = 1;
	classify(j);
	uv_timer_stop(&j->timer);
	close_once((uv_handle_t *)&j->timer);
	close_once((uv_handle_t *)&j->proc);
	close_once((uv_handle_t *)&j->in);
	close_once((uv_handle_t *)&j->err);
}

static void maybe_finish(struct exec_job *j)
{
	if (j->exited && j->write_status != 1 && j->err_eof)
		finish(j);
}

static void on_timer(uv_timer_t *t)
{
	struct exec_job *j = t->data;
	if (j->exited) {
		finish(j);      /* grace after the exit is over */
		return;
	}
	/* exec_timeout: kill the process group; the exit callback follows. */
	j->timed_out = 1;
	log_warn("deliver", "exec_killed", "list=%s prog=%s pid=%d timeout_s=%d", j->list,
		 log_q(j->prog), j->proc.pid, j->timeout_s);
	if (uv_kill(-j->proc.pid, SIGKILL) < 0)
		uv_process_kill(&j->proc, SIGKILL);
}

static void on_exit_cb(uv_process_t *p, int64_t exit_status, int term_signal)
{
	struct exec_job *j = p->data;
	j->exited = 1;
	j->exit_status = exit_status;
	j->term_signal = term_signal;
	if (j->write_status == 1 || !j->err_eof)
		uv_timer_start(&j->timer, on_timer, EXEC_GRACE_MS, 0);
	maybe_finish(j);
}

static void on_written(uv_write_t *w, int status)
{
	struct exec_job *j = w->data;
	j->write_status = status;
	if (j->finishing)
		return;
	close_once((uv_handle_t *)&j->in);   /* EOF for the program */
	maybe_finish(j);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)hint;
	struct exec_job *j = h->data;
	*buf = uv_buf_init(j->rbuf, sizeof(j->rbuf));
}

/* Keep the first bytes of stderr; read (and drop) the rest so that a
 * talkative program never blocks on a full pipe. */
static void on_err_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct exec_job *j = s->data;
	if (nread < 0) {
		j->err_eof = 1;
		uv_read_stop(s);
		maybe_finish(j);
		return;
	}
	size_t room = EXEC_STDERR_KEEP - j->errlen, n = (size_t)nread < room ? (size_t)nread : room;
	memcpy(j->errtext + j->errlen, buf->base, n);
	j->errlen += n;
}

void deliver_exec_start(struct dl_item *it)
{
	const struct il_list_conf *lc = dl_list(it);
	uv_loop_t *loop = dl_loop(it);
	struct exec_job *j = calloc(1, sizeof(*j));
	IL_ASSERT(j);   /* same policy as deliver.c's item allocations */
	j->it = it;
	it->backend = j;
	snprintf(j->list, sizeof(j->list), "%s", lc->name);
	const char *slash = strrchr(lc->exec_argv[0], '/');
	snprintf(j->prog, sizeof(j->prog), "%s", slash ? slash + 1 : lc->exec_argv[0]);
	j->timeout_s = lc->exec_timeout_s > 0 ? lc->exec_timeout_s : EXEC_DEFAULT_TIMEOUT_S;
	j->write_status = 1;
	uv_timer_init(loop, &j->timer);
	uv_pipe_init(loop, &j->in, 0);
	uv_pipe_init(loop, &j->err, 0);
	/* uv_spawn() keeps data: job_closed() needs it even if spawning fails. */
	j->timer.data = j->proc.data = j->in.data = j->err.data = j;
	j->wreq.data = j;
	j->open = 4;    /* timer, in, err, and the process handle (closed even if spawn fails) */

	uv_stdio_container_t stdio[3] = {
		/* Flags are from the child's side: it reads stdin, writes stderr. */
		{ .flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&j->in },
		{ .flags = UV_IGNORE },
		{ .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&j->err },
	};
	uv_process_options_t opt = {
		.exit_cb = on_exit_cb,
		.file = lc->exec_argv[0],
		.args = lc->exec_argv,
		.flags = UV_PROCESS_DETACHED,
		.stdio_count = 3,
		.stdio = stdio,
	};
	int e = uv_spawn(loop, &j->proc, &opt);
	if (e < 0) {
		j->spawn_err = e;
		j->write_status = 0;
		finish(j);
		return;
	}
	uv_buf_t bufs[2] = {
		uv_buf_init(it->headers, (unsigned)strlen(it->headers)),
		uv_buf_init((char *)it->msg, (unsigned)it->msg_len),
	};
	if ((e = uv_write(&j->wreq, (uv_stream_t *)&j->in, bufs, 2, on_written)) < 0) {
		j->write_status = e;
		close_once((uv_handle_t *)&j->in);
	}
	if (uv_read_start((uv_stream_t *)&j->err, on_alloc, on_err_read) < 0)
		j->err_eof = 1;
	uv_timer_start(&j->timer, on_timer, (uint64_t)j->timeout_s * 1000, 0);
}
