/* placeholder: the LMTP ingest server lands here */
#include <stdio.h>
#include "relay.h"
int ingest_start(struct relay *r, struct list_rt *l, char *err, size_t errlen)
{
	(void)r;
	if (l->conf->ingest_kind != IL_INGEST_NONE) {
		snprintf(err, errlen, "LMTP ingest not implemented yet");
		return -95;
	}
	return 0;
}
void ingest_stop(struct list_rt *l) { (void)l; }
