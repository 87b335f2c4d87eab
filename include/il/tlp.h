/*
 * tlp.h — Traffic Light Protocol levels, ordered so that a larger value is
 * more restricted. The numeric values travel in envelopes: never renumber.
 */
#ifndef IL_TLP_H
#define IL_TLP_H

enum il_tlp {
	IL_TLP_CLEAR = 0,
	IL_TLP_GREEN = 1,
	IL_TLP_AMBER = 2,
	IL_TLP_AMBER_STRICT = 3,
	IL_TLP_RED = 4,
};

/* Parse a level name, case-insensitive: clear, white (= clear), green, amber,
 * amber+strict, red. Returns 0 and sets *out, or -EINVAL for anything else
 * (callers decide whether unknown means red: mail headers fail closed,
 * configuration refuses). */
int tlp_parse(const char *s, size_t len, enum il_tlp *out);

/* Upper-case name as written in X-Interlist-TLP: CLEAR, GREEN, AMBER,
 * AMBER+STRICT, RED. */
const char *tlp_name(enum il_tlp t);

#endif
