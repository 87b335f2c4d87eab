/*
 * status_ops.c — operation commands of the status socket beyond status and
 * submit: peers, metrics, queue, purge (here) and the delivery commands
 * failed/retry (status_deliver.c).
 */
#include "status.h"

int status_extra_command(struct conn *c, struct relay *r, const char *cmd, char *args)
{
	if (status_deliver_command(c, r, cmd, args))
		return 1;
	return 0;
}
