/* placeholder: exec delivery lands here */
#include <stdio.h>
#include "deliver.h"
void deliver_exec_start(struct dl_item *it)
{
	it->result = DL_TEMPFAIL;
	snprintf(it->error, sizeof(it->error), "exec delivery not implemented yet");
	dl_item_finished(it);
}
