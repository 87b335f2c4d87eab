/*
 * ilforge — a test-only peer that speaks the relay protocol with crafted
 * requests and envelopes, for the refusal tests (impersonation, bad
 * signatures, unknown origins, stale or oversized messages).
 *
 *   ilforge --url URL --tls-cert C --tls-key K --peer-cert P --peer-id ID
 *           --sender ID --sender-key SIGNKEY
 *           [--origin ID --origin-key SIGNKEY] [--list L] [--msg FILE]
 *           [--time-offset-ms N] [--tlp N] [--path a,b] [--tamper-sig] [--no-push]
 *           [--replay]
 *
 * Prints "hello=STATUS" and, unless --no-push, "push=STATUS result=NAME";
 * with --replay it then sends the same PUSH request again, byte for byte,
 * and prints "replay=STATUS".
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <openssl/evp.h>

#include "il/crypto.h"
#include "il/envelope.h"
#include "il/util.h"
#include "wire.h"

static char *slurp(const char *path)
{
	uint8_t *b;
	size_t n;
	if (util_read_file(path, 1 << 26, &b, &n) < 0) {
		fprintf(stderr, "ilforge: cannot read %s\n", path);
		exit(2);
	}
	return (char *)b;
}

static EVP_PKEY *load_key(const char *path)
{
	EVP_PKEY *k;
	char err[256];
	if (keys_load_private(path, &k, err, sizeof(err)) < 0) {
		fprintf(stderr, "ilforge: %s: %s\n", path, err);
		exit(2);
	}
	return k;
}

static nng_msg *roundtrip(nng_socket s, const uint8_t *frame, size_t len)
{
	nng_msg *m;
	if (nng_msg_alloc(&m, 0) || nng_msg_append(m, frame, len) || nng_sendmsg(s, m, 0)) {
		fprintf(stderr, "ilforge: send failed\n");
		exit(3);
	}
	int e = nng_recvmsg(s, &m, 0);
	if (e) {
		printf("error=%s\n", nng_strerror(e));
		exit(4);
	}
	return m;
}

int main(int argc, char **argv)
{
	const char *url = NULL, *tls_cert = NULL, *tls_key = NULL, *peer_cert = NULL, *peer_id = NULL;
	const char *sender = NULL, *sender_key = NULL, *origin = NULL, *origin_key = NULL;
	const char *list = "incidents", *msgfile = NULL, *path = NULL;
	long long offset = 0;
	int tlp = IL_TLP_AMBER, tamper = 0, no_push = 0, replay = 0;
	static struct option opts[] = {
		{ "url", 1, 0, 'u' }, { "tls-cert", 1, 0, 'c' }, { "tls-key", 1, 0, 'k' },
		{ "peer-cert", 1, 0, 'p' }, { "peer-id", 1, 0, 'i' }, { "sender", 1, 0, 's' },
		{ "sender-key", 1, 0, 'S' }, { "origin", 1, 0, 'o' }, { "origin-key", 1, 0, 'O' },
		{ "list", 1, 0, 'l' }, { "msg", 1, 0, 'm' }, { "time-offset-ms", 1, 0, 't' },
		{ "tlp", 1, 0, 'T' }, { "path", 1, 0, 'P' }, { "tamper-sig", 0, 0, 'x' },
		{ "no-push", 0, 0, 'n' }, { "replay", 0, 0, 'r' }, { 0, 0, 0, 0 }
	};
	for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		switch (c) {
		case 'u': url = optarg; break;
		case 'c': tls_cert = optarg; break;
		case 'k': tls_key = optarg; break;
		case 'p': peer_cert = optarg; break;
		case 'i': peer_id = optarg; break;
		case 's': sender = optarg; break;
		case 'S': sender_key = optarg; break;
		case 'o': origin = optarg; break;
		case 'O': origin_key = optarg; break;
		case 'l': list = optarg; break;
		case 'm': msgfile = optarg; break;
		case 't': offset = atoll(optarg); break;
		case 'T': tlp = atoi(optarg); break;
		case 'P': path = optarg; break;
		case 'x': tamper = 1; break;
		case 'n': no_push = 1; break;
		case 'r': replay = 1; break;
		default: return 64;
		}
	}
	if (!url || !tls_cert || !tls_key || !peer_cert || !peer_id || !sender || !sender_key)
		return 64;
	nng_socket s;
	nng_dialer d;
	nng_tls_config *tc;
	nng_req0_open(&s);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 10000);
	nng_tls_config_alloc(&tc, NNG_TLS_MODE_CLIENT);
	nng_tls_config_own_cert(tc, slurp(tls_cert), slurp(tls_key), NULL);
	nng_tls_config_ca_chain(tc, slurp(peer_cert), NULL);
	nng_tls_config_server_name(tc, peer_id);
	nng_tls_config_auth_mode(tc, NNG_TLS_AUTH_MODE_REQUIRED);
	nng_dialer_create(&d, s, url);
	nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tc);
	int e = nng_dialer_start(d, 0);
	if (e) {
		printf("dial=%s\n", nng_strerror(e));
		return 5;
	}
	EVP_PKEY *skey = load_key(sender_key);
	uint8_t zero[WIRE_BOOT_LEN] = { 0 }, boot[WIRE_BOOT_LEN], status, *frame;
	size_t flen;
	struct rbuf body;
	wire_req_encode(WIRE_HELLO, sender, peer_id, (uint64_t)util_now_ms(), zero, NULL, 0, skey,
			&frame, &flen);
	nng_msg *m = roundtrip(s, frame, flen);
	free(frame);
	wire_reply_decode(nng_msg_body(m), nng_msg_len(m), &status, boot, &body);
	printf("hello=%u\n", status);
	nng_msg_free(m);
	if (no_push || status != WIRE_OK)
		return 0;

	EVP_PKEY *okey = load_key(origin_key ? origin_key : sender_key);
	const char *default_msg = "From: forge@example.org\nMessage-ID: <forge@example.org>\n"
				  "Subject: forged\n\nbody\n";
	char *msg = msgfile ? slurp(msgfile) : strdup(default_msg);
	struct il_envelope env = { 0 };
	uint64_t t = (uint64_t)(util_now_ms() + offset);
	if (envelope_create(&env, origin ? origin : sender, list, t, (enum il_tlp)tlp,
			    (uint8_t *)msg, strlen(msg), 16, okey) < 0) {
		fprintf(stderr, "ilforge: envelope_create failed\n");
		return 2;
	}
	if (path) {
		char *dup = strdup(path), *save = NULL;
		env.path_len = 0;
		for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			snprintf(env.path[env.path_len++], IL_ID_MAX + 1, "%s", tok);
		free(dup);
	} else if (strcmp(env.origin, sender) != 0) {
		envelope_path_append(&env, sender);
	}
	if (tamper)
		env.sig[0] ^= 1;
	uint8_t *enc;
	size_t elen;
	envelope_encode(&env, &enc, &elen);
	struct wbuf w = { 0 };
	wbuf_u32(&w, 1);
	wbuf_u32(&w, (uint32_t)elen);
	wbuf_put(&w, enc, elen);
	wire_req_encode(WIRE_PUSH, sender, peer_id, (uint64_t)util_now_ms(), boot, w.p, w.len, skey,
			&frame, &flen);
	m = roundtrip(s, frame, flen);
	wire_reply_decode(nng_msg_body(m), nng_msg_len(m), &status, boot, &body);
	uint32_t n = rbuf_u32(&body);
	const uint8_t *res = rbuf_take(&body, n);
	printf("push=%u result=%s\n", status, status == WIRE_OK && n == 1 && res ? wire_result_name(res[0]) : "none");
	nng_msg_free(m);
	if (replay) {
		/* The very same signed request again, nonce and all. */
		m = roundtrip(s, frame, flen);
		wire_reply_decode(nng_msg_body(m), nng_msg_len(m), &status, boot, &body);
		printf("replay=%u\n", status);
		nng_msg_free(m);
	}
	nng_close(s);
	free(frame);
	free(enc);
	wbuf_free(&w);
	free(msg);
	envelope_free(&env);
	EVP_PKEY_free(skey);
	EVP_PKEY_free(okey);
	return 0;
}
