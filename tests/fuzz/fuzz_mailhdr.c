/*
 * fuzz_mailhdr.c — mailhdr_parse and mailhdr_prepare on arbitrary bytes.
 *
 * Besides the sanitizers, checks what callers rely on: prepare never grows
 * the message and leaves no CRLF; it is idempotent (a relay that prepares a
 * prepared message must sign the same bytes); both functions agree on what is
 * mail; and parse reads the same fields from a message and its prepared form.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "il/error.h"
#include "il/mailhdr.h"

#define FUZZ_MAX (1u << 20) /* the daemon's default message size limit */

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct il_mailinfo info, info2;
	uint8_t *out = NULL, *out2 = NULL;
	size_t out_len = 0, out2_len = 0;

	int rc = mailhdr_parse(d, n, FUZZ_MAX, &info);
	if (rc == 0) {
		if (!info.message_id || !info.message_id[0])
			abort();
		if (info.tlp > IL_TLP_RED || (info.tlp_unknown && !info.tlp_found))
			abort();
		/* strlen walks the string: ASan flags a missing NUL. */
		if (info.subject && strlen(info.subject) > 2 * n)
			abort();
	} else if (rc != IL_ENOTMAIL && rc != IL_ENOMSGID && rc != IL_ETOOLARGE) {
		abort();
	} else if (info.message_id || info.subject) {
		abort(); /* on failure info owns nothing */
	}

	int prc = mailhdr_prepare(d, n, &out, &out_len);
	if (prc == 0) {
		if (out_len > n || memmem(out, out_len, "\r\n", 2))
			abort();
		if (mailhdr_prepare(out, out_len, &out2, &out2_len) != 0 || out2_len != out_len ||
		    memcmp(out, out2, out_len) != 0)
			abort();
		int rc2 = mailhdr_parse(out, out_len, FUZZ_MAX, &info2);
		if (rc2 != rc && rc != IL_ETOOLARGE)
			abort();
		if (rc2 == 0 && rc == 0 &&
		    (!same_str(info.message_id, info2.message_id) ||
		     !same_str(info.subject, info2.subject) || info.tlp != info2.tlp ||
		     info.tlp_found != info2.tlp_found || info.tlp_unknown != info2.tlp_unknown ||
		     info2.has_interlist_id))
			abort();
		mailhdr_free(&info2);
	} else if (prc != IL_ENOTMAIL || out) {
		abort();
	}
	/* Same header reader: mail for one is mail for the other (below the
	 * size limit, which only parse has). */
	if (n <= FUZZ_MAX && (prc == 0) != (rc == 0 || rc == IL_ENOMSGID))
		abort();
	mailhdr_free(&info);
	free(out);
	free(out2);
	return 0;
}
