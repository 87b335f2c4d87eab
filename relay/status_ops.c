/* status_ops.c — operation commands of the status socket (issue: operations). */
#include "status.h"

int status_extra_command(struct conn *c, struct relay *r, const char *cmd, char *args)
{
	(void)c;
	(void)r;
	(void)cmd;
	(void)args;
	return 0;
}
