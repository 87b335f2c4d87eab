/* tlp.c — TLP level names. */
#include <errno.h>
#include <stddef.h>
#include <strings.h>

#include "il/tlp.h"

static const struct {
	const char *name;
	enum il_tlp level;
} names[] = {
	{ "clear", IL_TLP_CLEAR }, { "white", IL_TLP_CLEAR }, { "green", IL_TLP_GREEN },
	{ "amber", IL_TLP_AMBER }, { "amber+strict", IL_TLP_AMBER_STRICT }, { "red", IL_TLP_RED },
};

int tlp_parse(const char *s, size_t len, enum il_tlp *out)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *n = names[i].name;
		size_t nl = 0;
		while (n[nl])
			nl++;
		if (nl == len && strncasecmp(s, n, len) == 0) {
			*out = names[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

const char *tlp_name(enum il_tlp t)
{
	switch (t) {
	case IL_TLP_CLEAR: return "CLEAR";
	case IL_TLP_GREEN: return "GREEN";
	case IL_TLP_AMBER: return "AMBER";
	case IL_TLP_AMBER_STRICT: return "AMBER+STRICT";
	case IL_TLP_RED: return "RED";
	}
	return "RED";
}
