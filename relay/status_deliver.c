/*
 * status_deliver.c — status socket commands about a list's parked
 * deliveries (permanent failures, kept until an operator acts):
 *
 *   failed LIST        read-only, any caller who may connect:
 *     {"list":"NAME","total":N,"truncated":false,"failed":[{"id":"64hex",
 *      "attempts":N,"error":"...","received":UNIXSECONDS,"origin":"ID",
 *      "message_id":"<...>","size":BYTES}, ...]}   oldest first
 *   retry LIST [ID]    root or the daemon's user: parked → pending, then the
 *     list's delivery is kicked: {"list":"NAME","retried":N}
 *
 * Errors as in status_ops.c: `err 64` usage or a bad id, `err 65` unknown
 * list or an id that is not parked, `err 75` store, `err 77` permission.
 */
#include <stdlib.h>
#include <string.h>

#include "il/error.h"
#include "il/log.h"
#include "il/mailhdr.h"
#include "status.h"

/* Entries come with their message bytes (up to max_message_bytes each) and
 * the store hands out no pages: bound what one answer holds in memory.
 * "total" and "truncated" tell there is more; `retry LIST` takes them all. */
#define FAILED_LIST_MAX 200

static void answer_json(struct conn *c, struct wbuf *b)
{
	wbuf_u8(b, 0);
	if (b->err) {
		wbuf_free(b);
		status_answerf(c, "err 75 out of memory\n");
		return;
	}
	status_answer(c, (char *)b->p, b->len - 1);
}

/* Origin and Message-ID of a stored envelope, when it still decodes. */
static void json_entry_details(struct wbuf *b, const struct store_entry *e)
{
	struct il_envelope env = { 0 };
	if (envelope_decode(e->blob, e->blob_len, SIZE_MAX, &env, NULL) < 0)
		return;
	jb_printf(b, ",\"origin\":");
	jb_str(b, env.origin);
	struct il_mailinfo mi = { 0 };
	if (mailhdr_parse(env.msg, env.msg_len, env.msg_len, &mi) == 0) {
		jb_printf(b, ",\"message_id\":");
		jb_str(b, mi.message_id);
		mailhdr_free(&mi);
	}
	jb_printf(b, ",\"size\":%zu", env.msg_len);
	envelope_free(&env);
}

static void cmd_failed(struct conn *c, struct relay *r, const char *list)
{
	uint64_t pending = 0, total = 0;
	size_t n = 0;
	struct store_entry *ents = calloc(FAILED_LIST_MAX, sizeof(*ents));
	if (!ents) {
		status_answerf(c, "err 75 out of memory\n");
		return;
	}
	int e = store_deliver_stats(r->store, list, &pending, &total);
	if (e == 0)
		e = store_deliver_failed(r->store, list, FAILED_LIST_MAX, ents, &n);
	if (e < 0) {
		free(ents);
		log_err("status", "failed_list_failed", "list=%s err=%s", list, log_q(il_strerror(e)));
		status_answerf(c, "err 75 store: %s\n", il_strerror(e));
		return;
	}
	struct wbuf b = { 0 };
	jb_printf(&b, "{\"list\":");
	jb_str(&b, list);
	/* total is counted before the fetch: never fewer than listed. */
	if (total < n)
		total = n;
	jb_printf(&b, ",\"total\":%llu,\"truncated\":%s,\"failed\":[", (unsigned long long)total,
		  total > n ? "true" : "false");
	for (size_t i = 0; i < n; i++) {
		char hex[IL_ID_HEX_LEN + 1];
		envelope_id_hex(ents[i].id, hex);
		jb_printf(&b, "%s{\"id\":\"%s\",\"attempts\":%d,\"error\":", i ? "," : "", hex,
			  ents[i].attempts);
		jb_str(&b, ents[i].last_error ? ents[i].last_error : "");
		jb_printf(&b, ",\"received\":%lld", (long long)(ents[i].queued_ms / 1000));
		json_entry_details(&b, &ents[i]);
		jb_printf(&b, "}");
	}
	jb_printf(&b, "]}\n");
	store_entries_free(ents, n);
	free(ents);
	answer_json(c, &b);
}

static void cmd_retry(struct conn *c, struct relay *r, struct list_rt *l, const char *hex)
{
	const char *list = l->conf->name;
	uint8_t id[IL_SHA256_LEN];
	uid_t uid = (uid_t)-1;
	if (hex && envelope_id_parse(hex, id) < 0) {
		status_answerf(c, "err 64 not a message id (64 hex digits): %.80s\n", hex);
		return;
	}
	status_peer_uid(c, &uid);
	uint64_t n = 0;
	int e = store_deliver_retry(r->store, list, hex ? id : NULL, &n);
	if (e < 0) {
		log_err("status", "retry_failed", "list=%s err=%s", list, log_q(il_strerror(e)));
		status_answerf(c, "err 75 store: %s\n", il_strerror(e));
		return;
	}
	if (hex && n == 0) {
		status_answerf(c, "err 65 message %.64s is not parked for %s\n", hex, list);
		return;
	}
	log_warn("deliver", "retried", "list=%s msg=%s deliveries=%llu uid=%lu", list,
		 hex ? hex : "all", (unsigned long long)n, (unsigned long)uid);
	if (n)
		deliver_kick(l);
	struct wbuf b = { 0 };
	jb_printf(&b, "{\"list\":");
	jb_str(&b, list);
	jb_printf(&b, ",\"retried\":%llu}\n", (unsigned long long)n);
	answer_json(c, &b);
}

int status_deliver_command(struct conn *c, struct relay *r, const char *cmd, char *args)
{
	int retry = !strcmp(cmd, "retry");
	if (!retry && strcmp(cmd, "failed") != 0)
		return 0;
	/* Before anything else: an unprivileged caller learns nothing from
	 * retry, not even whether the list exists. */
	if (retry && !status_caller_privileged(c)) {
		status_answerf(c, "err 77 permission denied\n");
		return 1;
	}
	char none[1] = "", *save = args ? args : none;
	char *list = strtok_r(NULL, " ", &save);
	char *hex = list ? strtok_r(NULL, " ", &save) : NULL;
	if (!list || (hex && (!retry || strtok_r(NULL, " ", &save)))) {
		status_answerf(c, "err 64 usage: %s\n", retry ? "retry LIST [ID]" : "failed LIST");
		return 1;
	}
	struct list_rt *l = relay_list(r, list);
	if (!l) {
		status_answerf(c, "err 65 unknown list %.64s\n", list);
		return 1;
	}
	if (retry)
		cmd_retry(c, r, l, hex);
	else
		cmd_failed(c, r, l->conf->name);
	return 1;
}
