/* status_deliver.c — `failed LIST` and `retry LIST [ID]` (placeholder). */
#include "status.h"

int status_deliver_command(struct conn *c, struct relay *r, const char *cmd, char *args)
{
	(void)c;
	(void)r;
	(void)cmd;
	(void)args;
	return 0;
}
