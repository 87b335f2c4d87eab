/*
 * error.h — the one error convention of interlist.
 *
 * Every fallible function returns 0 (or a non-negative count) on success and a
 * negative code on failure: either a negated errno value (-ENOMEM, -EIO, ...)
 * or one of the IL_E* codes below, which name failures that errno cannot.
 * il_strerror() turns any of them into text. nng returns positive NNG_E*
 * codes; il_from_nng() converts them at the boundary.
 *
 * Naming rule for the whole tree: public names carry their module's prefix
 * (config_, envelope_, store_, mailhdr_, crypto_, keys_, log_); helpers that do
 * not leave a file are static.
 */
#ifndef IL_ERROR_H
#define IL_ERROR_H

/* Codes start well above the largest errno value Linux uses (~133). */
enum il_error {
	IL_EMALFORMED = -1001,  /* bytes do not decode (bad length, bad tag) */
	IL_ETRUNCATED = -1002,  /* input ends before a field it announced */
	IL_EVERSION = -1003,    /* unknown format or schema version */
	IL_ETOOLARGE = -1004,   /* over a configured size limit */
	IL_EBADSIG = -1005,     /* signature does not verify */
	IL_EALG = -1006,        /* unknown signature algorithm */
	IL_ENOMSGID = -1007,    /* RFC 5322 message without Message-ID */
	IL_ENOTMAIL = -1008,    /* not an RFC 5322 message (no header/body split, bad header) */
	IL_EDUP = -1009,        /* already stored (same envelope id or list+Message-ID) */
	IL_ENEWER = -1010,      /* database written by a newer interlist */
	IL_ECONFIG = -1011,     /* configuration error (message in the caller's buffer) */
	IL_ETRAILING = -1012,   /* bytes left after a complete structure */
	IL_EFIELD = -1013,      /* a field's value is invalid (id charset, empty list) */
	IL_EKEY = -1014,        /* key or certificate unusable (type, permissions) */
	IL_ECRYPTO = -1015,     /* the crypto library failed */
	IL_ESTORE = -1016,      /* the database failed (not a full disk) */
	IL_EFULL = -1017,       /* disk full or store busy: try later */
	IL_EAUTH = -1018,       /* sender proof failed */
	IL_ESTALE = -1019,      /* outside the accepted time window */
	IL_EHOPS = -1020,       /* path at the hop limit */
};

/* Text for any code this tree returns (errno or IL_E*); never NULL. */
const char *il_strerror(int code);

/* Convert a positive NNG_E* code to an interlist code (0 stays 0). */
int il_from_nng(int nng_err);

#define IL_MUST_CHECK __attribute__((warn_unused_result))

/* Broken invariant: abort in every build (not assert(), which NDEBUG removes). */
#define IL_ASSERT(cond)                                                     \
	do {                                                                \
		if (!(cond))                                                \
			il_assert_fail(#cond, __FILE__, __LINE__);          \
	} while (0)
_Noreturn void il_assert_fail(const char *what, const char *file, int line);

#endif
