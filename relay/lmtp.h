/*
 * lmtp.h — the LMTP protocol (RFC 2033) as a state machine without I/O.
 *
 * The server (ingest_lmtp.c) feeds it the bytes it reads; the machine parses
 * commands one by one (so pipelined commands are answered in order), appends
 * its replies to an output buffer the server drains, and stops at each
 * complete message. The server stores that message and answers it with
 * lmtp_finish(), which writes one reply per accepted recipient, as LMTP
 * requires. No sockets, no clock, no relay state: the unit test and the fuzz
 * target drive it directly.
 *
 * Names: lmtp_ (functions), LMTP_ (constants); everything else is static.
 */
#ifndef IL_LMTP_H
#define IL_LMTP_H

#include <stddef.h>
#include <stdint.h>

/* A command line, CRLF included. RFC 5321 4.5.3.1.4 allows 512; we take the
 * text-line limit (4.5.3.1.6) so that long addresses and parameters fit. */
#define LMTP_LINE_MAX 1000
/* A "line" this long without LF is not a client that lost its way: answer
 * 500 and hang up instead of reading on. */
#define LMTP_LINE_ABSURD (64 * 1024)
/* RFC 5321 4.5.3.1.8: a server must take at least 100 recipients. */
#define LMTP_MAX_RCPT 100
/* Protocol errors in one session before we hang up (421). */
#define LMTP_MAX_ERRORS 20

enum lmtp_event {
	LMTP_MORE = 0,          /* input consumed: send the output, feed more */
	LMTP_MESSAGE,           /* a message is complete: lmtp_message(), then lmtp_finish() */
	LMTP_CLOSE,             /* send the output, then close (QUIT, or hanging up) */
};

struct lmtp;

/*
 * A new session. name is our host name in the greeting and the LHLO answer
 * (copied; at most 255 bytes are used); max_message is the largest message in
 * bytes as received (after dot-unstuffing, CRLF counted). The greeting (220)
 * is already in the output. NULL when out of memory.
 */
struct lmtp *lmtp_new(const char *name, size_t max_message);
void lmtp_free(struct lmtp *s);

/*
 * Consume bytes from in[0..len). *used says how many were taken: all of them
 * for LMTP_MORE; up to the end of the message for LMTP_MESSAGE (feed the rest
 * after lmtp_finish()); up to the command that ended the session for
 * LMTP_CLOSE (the rest is to be discarded). Replies are appended to the
 * output. While a message waits for lmtp_finish() it returns LMTP_MESSAGE
 * and takes nothing; once closed, LMTP_CLOSE. Returns -ENOMEM when a buffer
 * cannot grow: the session is unusable, close it (nothing was accepted).
 */
int lmtp_feed(struct lmtp *s, const uint8_t *in, size_t len, size_t *used);

/*
 * The complete message (valid until lmtp_finish()): 0 and the bytes as
 * received, dot-unstuffed, or IL_ETOOLARGE when it was over max_message (its
 * bytes were discarded; *len is then the size seen). Only after LMTP_MESSAGE.
 */
int lmtp_message(const struct lmtp *s, const uint8_t **msg, size_t *len);

/* Envelope of the transaction under way (valid until lmtp_finish / RSET). */
size_t lmtp_rcpt_count(const struct lmtp *s);
const char *lmtp_rcpt(const struct lmtp *s, size_t i);
const char *lmtp_mail_from(const struct lmtp *s);

/* Is a DATA transfer under way (a hang-up now loses the message)? */
int lmtp_in_data(const struct lmtp *s);

/*
 * Answer the waiting message: one reply per recipient, all the same. result
 * is 0 (250: stored, or a repeat or loop that needs nothing more),
 * IL_ETOOLARGE (552), IL_ENOTMAIL or IL_ENOMSGID (550), anything else (451:
 * try again later). detail (may be NULL) ends each reply's text, e.g. the
 * envelope id. Then the session is ready for the next MAIL.
 */
void lmtp_finish(struct lmtp *s, int result, const char *detail);

/*
 * MAIL commands refused (552) for a SIZE= over max_message since the last
 * call, which resets the count: each is a too-large post the caller counts
 * and logs, as it does one refused at the final dot. *declared and *from
 * (either may be NULL) give the last one's size and sender; *from is valid
 * until the next lmtp_feed().
 */
size_t lmtp_take_size_refusals(struct lmtp *s, unsigned long long *declared, const char **from);

/* Move the output to the caller, who frees it with free(); *len bytes, NULL
 * when there is none. The session starts a new output buffer. */
uint8_t *lmtp_take_output(struct lmtp *s, size_t *len);

#endif
