/* placeholder: SMTP delivery lands here */
#include <stdio.h>
#include "deliver.h"
int deliver_smtp_init(struct deliverer *d, void **state) { (void)d; *state = NULL; return 0; }
void deliver_smtp_fini(void *state) { (void)state; }
void deliver_smtp_start(struct dl_item *it)
{
	it->result = DL_TEMPFAIL;
	snprintf(it->error, sizeof(it->error), "smtp delivery not implemented yet");
	dl_item_finished(it);
}
