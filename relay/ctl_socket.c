/* placeholder: submit and status land here */
#include "ctl.h"
int ctl_submit(const struct ctl_opts *o, int argc, char **argv) { (void)o; (void)argc; (void)argv; return EX_SOFTWARE_; }
int ctl_command(const struct ctl_opts *o, int argc, char **argv) { (void)o; (void)argc; (void)argv; return EX_SOFTWARE_; }
