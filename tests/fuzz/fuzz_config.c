/*
 * fuzz_config.c — libFuzzer target for the configuration parser. The bytes
 * are parsed as a file under a fixed absolute name, so relative paths in
 * them resolve the same way every run and nothing is read from disk. On
 * success every lookup is walked too, so ASan sees every string the parser
 * produced. Must never crash or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "il/config.h"

static void walk(const struct il_config *c)
{
	size_t n = strlen(c->path) + strlen(c->dir) + strlen(c->status_socket.s);
	for (size_t i = 0; i < c->n_peers; i++) {
		const struct il_peer_conf *p = &c->peers[i];
		n += config_peer(c, p->id) == p;
		for (size_t j = 0; j < p->n_sign_pub; j++)
			n += strlen(p->sign_pub[j].s);
		for (size_t j = 0; j < p->n_lists; j++)
			n += config_peer_has_list(p, p->lists[j]) + (config_list(c, p->lists[j]) != NULL);
	}
	for (size_t i = 0; i < c->n_origins; i++)
		n += config_origin(c, c->origins[i].id) != NULL;
	for (size_t i = 0; i < c->n_lists; i++) {
		const struct il_list_conf *l = &c->lists[i];
		n += strlen(l->mail_from);
		if (l->deliver_target)
			n += strlen(l->deliver_target);
		for (char **a = l->exec_argv; a && *a; a++)
			n += strlen(*a);
		if (l->ingest_kind == IL_INGEST_LMTP_TCP || l->deliver_kind == IL_DELIVER_SMTP) {
			char host[256];
			uint16_t port;
			const char *t = l->deliver_kind == IL_DELIVER_SMTP ? l->deliver_target
									: l->ingest_target;
			/* What the parser accepted, the splitter must accept too. */
			if (config_split_hostport(t, host, sizeof(host), &port) != 0)
				__builtin_trap();
		}
	}
	/* Keep the walk from being optimised away. */
	__asm__ volatile("" : : "r"(n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct il_config *c = NULL;
	char err[256];
	if (config_load_buffer("/fuzz/interlist.conf", (const char *)data, size, &c, err,
			       sizeof(err)) == 0) {
		walk(c);
		config_free(c);
	} else if (c != NULL || strncmp(err, "/fuzz/interlist.conf:", 21) != 0) {
		/* A failure must leave no config and say FILE:LINE:. */
		__builtin_trap();
	}
	return 0;
}
