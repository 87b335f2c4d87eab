/*
 * mailhdr.h — reading the header block of an RFC 5322 message.
 *
 * Only what the relay needs: Message-ID, Subject (RFC 2047 decoded), the TLP
 * marking, and an X-Interlist-Id already present (loop detection). Works on
 * LF or CRLF input; folded lines are unfolded; names are case-insensitive.
 */
#ifndef IL_MAILHDR_H
#define IL_MAILHDR_H

#include <stddef.h>
#include <stdint.h>

#include "il/crypto.h"
#include "il/tlp.h"

struct il_mailinfo {
	char *message_id;       /* as written, with the angle brackets; owned */
	char *subject;          /* decoded to UTF-8, NULL if absent; owned */
	enum il_tlp tlp;        /* stricter of TLP: header and [TLP:X] in Subject */
	int tlp_found;          /* 0: no marking; caller applies the list default */
	int tlp_unknown;        /* a marking with an unknown level (read as red): log it */
	int has_interlist_id;   /* an X-Interlist-Id header with 64 hex digits */
	uint8_t interlist_id[IL_SHA256_LEN];
	int has_interlist_time; /* an X-Interlist-Time header (util_time_parse) */
	int64_t interlist_time_ms;
};

/*
 * Details of mailhdr_parse, for callers that log or compare:
 * - The first non-empty Message-ID counts; an empty one counts as missing.
 * - subject is the first Subject; the TLP tags of every Subject count. An
 *   encoded word that is malformed, or would decode to NUL, CR or LF, is kept
 *   as written. Charsets other than utf-8, us-ascii and iso-8859-1 keep their
 *   raw bytes.
 * - The first X-Interlist-Id with 64 hex digits sets interlist_id, the first
 *   X-Interlist-Time in the form util_time_str writes sets interlist_time_ms.
 * - An empty header block (blank first line) is IL_ENOMSGID, not
 *   IL_ENOTMAIL: it is what prepare makes of a header of relay fields only.
 * - On any error info owns nothing.
 * - A line ends at LF; CRs right before it belong to the line end. Any other
 *   CR is data.
 * mailhdr_prepare refuses (IL_ENOTMAIL) exactly the header blocks that
 * mailhdr_parse refuses as IL_ENOTMAIL. It turns each line end into a bare LF
 * (so "\r\r\n" becomes "\n": the output never holds CRLF), which makes it
 * idempotent, and parse reads the same fields from its output (except the
 * X-Interlist-Id and X-Interlist-Time it removed).
 */

/*
 * Parse the header block. Errors: IL_ETOOLARGE (len > max_bytes),
 * IL_ENOTMAIL (no blank line between header and body, a header line that is
 * neither "name: value" nor a continuation, NUL bytes in the header),
 * IL_ENOMSGID (no Message-ID). On success info owns its strings.
 */
int mailhdr_parse(const uint8_t *msg, size_t len, size_t max_bytes, struct il_mailinfo *info);

void mailhdr_free(struct il_mailinfo *info);

/*
 * The form that is signed and stored: line endings normalised to LF and every
 * X-Interlist-* header (with its continuation lines) removed, so a list member
 * cannot forge relay headers. *out is malloc'd, caller owns it.
 */
int mailhdr_prepare(const uint8_t *msg, size_t len, uint8_t **out, size_t *out_len);

#endif
