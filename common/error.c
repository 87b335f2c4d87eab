/* error.c — il_strerror() for errno and IL_E* codes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include <nng/nng.h>

#include "il/error.h"
#include "il/log.h"

const char *il_strerror(int code)
{
	switch (code) {
	case 0: return "success";
	case IL_EMALFORMED: return "malformed input";
	case IL_ETRUNCATED: return "input truncated";
	case IL_EVERSION: return "unsupported version";
	case IL_ETOOLARGE: return "too large";
	case IL_EBADSIG: return "signature does not verify";
	case IL_EALG: return "unknown signature algorithm";
	case IL_ENOMSGID: return "message has no Message-ID";
	case IL_ENOTMAIL: return "not an RFC 5322 message";
	case IL_EDUP: return "duplicate";
	case IL_ENEWER: return "database from a newer interlist";
	case IL_ECONFIG: return "configuration error";
	case IL_ETRAILING: return "trailing bytes after the data";
	case IL_EFIELD: return "invalid field value";
	case IL_EKEY: return "unusable key or certificate";
	case IL_ECRYPTO: return "crypto library failure";
	case IL_ESTORE: return "store failure";
	case IL_EFULL: return "store full or busy, try later";
	case IL_EAUTH: return "sender authentication failed";
	case IL_ESTALE: return "outside the accepted time window";
	case IL_EHOPS: return "hop limit reached";
	default: break;
	}
	if (code < 0 && code > -1000)
		return strerror(-code);
	return "unknown error";
}

int il_from_nng(int e)
{
	switch (e) {
	case 0: return 0;
	case NNG_ENOMEM: return -ENOMEM;
	case NNG_EINVAL: return -EINVAL;
	case NNG_EBUSY: return -EBUSY;
	case NNG_ETIMEDOUT: return -ETIMEDOUT;
	case NNG_ECONNREFUSED: return -ECONNREFUSED;
	case NNG_ECLOSED: return -EPIPE;
	case NNG_EAGAIN: return -EAGAIN;
	case NNG_ENOTSUP: return -ENOTSUP;
	case NNG_EADDRINUSE: return -EADDRINUSE;
	case NNG_ESTATE: return -EALREADY;
	case NNG_ENOENT: return -ENOENT;
	case NNG_EPROTO: return -EPROTO;
	case NNG_EUNREACHABLE: return -EHOSTUNREACH;
	case NNG_EADDRINVAL: return -EINVAL;
	case NNG_EPERM: return -EPERM;
	case NNG_EMSGSIZE: return -EMSGSIZE;
	case NNG_ECONNABORTED: return -ECONNABORTED;
	case NNG_ECONNRESET: return -ECONNRESET;
	case NNG_ECANCELED: return -ECANCELED;
	case NNG_ENOFILES: return -EMFILE;
	case NNG_ENOSPC: return -ENOSPC;
	case NNG_EPEERAUTH: return -EACCES;
	case NNG_ECRYPTO: return IL_ECRYPTO;
	default: return -EIO;
	}
}

void il_assert_fail(const char *what, const char *file, int line)
{
	log_flush();    /* the lines held on this thread tell what led here */
	fprintf(stderr, "level=error sub=core event=assert_failed what=\"%s\" at=%s:%d\n",
		what, file, line);
	abort();
}
