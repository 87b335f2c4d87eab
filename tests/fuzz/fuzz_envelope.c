/*
 * fuzz_envelope.c — envelope_decode() on arbitrary bytes, as a peer's batch
 * would arrive.
 *
 * Walks the input as a batch (consumed != NULL), and decodes it whole
 * (consumed == NULL). Every envelope that decodes must re-encode to exactly
 * the bytes it came from: the encoding is canonical, and the id is hashed
 * from the received bytes on that assumption.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "il/envelope.h"
#include "il/error.h"

/* Small, so the fuzzer also reaches the size refusal; big enough for any
 * message it is likely to build. */
#define FUZZ_MAX_MSG 4096

static void roundtrip(const struct il_envelope *env, const uint8_t *src, size_t len)
{
	uint8_t *out = NULL;
	size_t out_len = 0;
	char path[IL_PATH_STR_MAX];
	char hex[IL_ID_HEX_LEN + 1];
	uint8_t id[IL_SHA256_LEN];

	if (envelope_encoded_len(env) != len)
		abort();
	if (envelope_encode(env, &out, &out_len) != 0 || out_len != len ||
	    memcmp(out, src, len) != 0)
		abort();
	free(out);

	envelope_path_str(env, path, sizeof(path));
	if (!envelope_path_has(env, env->origin) || strlen(path) >= sizeof(path))
		abort();
	envelope_id_hex(env->id, hex);
	if (envelope_id_parse(hex, id) != 0 || memcmp(id, env->id, sizeof(id)) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct il_envelope env;
	size_t pos = 0, used;

	while (pos < size) {
		used = 0;
		if (envelope_decode(data + pos, size - pos, FUZZ_MAX_MSG, &env, &used) != 0) {
			if (env.msg)
				abort();        /* a failure leaves nothing to free */
			break;
		}
		if (used == 0 || used > size - pos)
			abort();
		roundtrip(&env, data + pos, used);
		envelope_free(&env);
		envelope_free(&env);
		pos += used;
	}

	if (envelope_decode(data, size, FUZZ_MAX_MSG, &env, NULL) == 0) {
		roundtrip(&env, data, size);
		envelope_free(&env);
	}
	return 0;
}
