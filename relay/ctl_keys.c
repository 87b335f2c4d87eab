/* placeholder: init, check, fingerprint land here */
#include "ctl.h"
int ctl_init(const struct ctl_opts *o, int argc, char **argv) { (void)o; (void)argc; (void)argv; return EX_SOFTWARE_; }
int ctl_check(const struct ctl_opts *o, int argc, char **argv) { (void)o; (void)argc; (void)argv; return EX_SOFTWARE_; }
int ctl_fingerprint(const struct ctl_opts *o, int argc, char **argv) { (void)o; (void)argc; (void)argv; return EX_SOFTWARE_; }
