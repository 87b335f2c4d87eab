/*
 * fuzz_wire — the relay-to-relay frames (relay/wire.c) over arbitrary bytes:
 * request and reply headers, and the envelope lists of PUSH bodies and PULL
 * replies, each envelope decoded too. Must never read out of bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "il/envelope.h"
#include "wire.h"

static int each(void *arg, const uint8_t *p, size_t n)
{
	struct il_envelope env;
	(void)arg;
	memset(&env, 0, sizeof(env));
	if (envelope_decode(p, n, 1 << 20, &env, NULL) == 0)
		envelope_free(&env);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_req q;
	if (wire_req_decode(data, size, &q) == 0) {
		struct rbuf body = { .p = q.body, .len = q.body_len };
		if (q.type == WIRE_PUSH)
			wire_envelopes_each(&body, each, NULL);
	}
	uint8_t status, boot[WIRE_BOOT_LEN];
	struct rbuf rb;
	if (wire_reply_decode(data, size, &status, boot, &rb) == 0) {
		(void)rbuf_u64(&rb);
		wire_envelopes_each(&rb, each, NULL);
	}
	/* The body parsers alone, without a valid header in front. */
	struct rbuf raw = { .p = data, .len = size };
	wire_envelopes_each(&raw, each, NULL);
	return 0;
}
