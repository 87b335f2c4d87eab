/* test_mailhdr.c — header parsing, RFC 2047, TLP markings and prepare. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "il/error.h"
#include "il/mailhdr.h"
#include "check.h"

#define MAX (1u << 20)

static int parse_str(const char *s, struct il_mailinfo *info)
{
	return mailhdr_parse((const uint8_t *)s, strlen(s), MAX, info);
}

/* Parse s, which must succeed, and return its Subject in a static buffer
 * (or "(null)"). */
static const char *subject_of(const char *s)
{
	static char buf[1024];
	struct il_mailinfo info;
	int rc = parse_str(s, &info);
	CHECK_EQ(rc, 0);
	snprintf(buf, sizeof(buf), "%s", info.subject ? info.subject : "(null)");
	mailhdr_free(&info);
	return buf;
}

static void test_basic(void)
{
	const char *m =
		"Return-Path: <alice@example.org>\n"
		"Received: from mx.example.org (mx.example.org [192.0.2.1])\n"
		"\tby lists.example.net with ESMTPS id 4Xyz\n"
		"\tfor <sec@lists.example.net>; Tue, 12 Nov 2024 09:00:00 +0100\n"
		"From: Alice <alice@example.org>\n"
		"To: sec@lists.example.net\n"
		"Date: Tue, 12 Nov 2024 09:00:00 +0100\n"
		"Message-ID:   <20241112.abc@example.org>  \n"
		"Message-ID: <second@example.org>\n"
		"Subject: Patch for CVE-2024-0001\n"
		"MIME-Version: 1.0\n"
		"\n"
		"Body line\n"
		"Subject: not a header\n";
	struct il_mailinfo info;
	CHECK_EQ(parse_str(m, &info), 0);
	CHECK_STR(info.message_id, "<20241112.abc@example.org>");
	CHECK_STR(info.subject, "Patch for CVE-2024-0001");
	CHECK_EQ(info.tlp_found, 0);
	CHECK_EQ(info.tlp_unknown, 0);
	CHECK_EQ(info.tlp, IL_TLP_CLEAR);
	CHECK_EQ(info.has_interlist_id, 0);
	mailhdr_free(&info);
	CHECK(info.message_id == NULL && info.subject == NULL);
	mailhdr_free(&info); /* twice is harmless */

	/* No Subject: NULL; an empty Subject: "". Empty body is fine. */
	CHECK_EQ(parse_str("Message-ID: <a@b>\n\n", &info), 0);
	CHECK(info.subject == NULL);
	mailhdr_free(&info);
	CHECK_EQ(parse_str("Message-ID: <a@b>\nSubject:\n\n", &info), 0);
	CHECK_STR(info.subject, "");
	mailhdr_free(&info);
}

static void test_case_and_crlf(void)
{
	const char *m =
		"from: Bob <bob@example.com>\r\n"
		"message-id: <crlf@example.com>\r\n"
		"SUBJECT: =?UTF-8?Q?caf=C3=A9?=\r\n"
		" =?UTF-8?Q?_au_lait?=\r\n"
		"tlp: Amber\r\n"
		"\r\n"
		"body\r\n";
	struct il_mailinfo info;
	CHECK_EQ(parse_str(m, &info), 0);
	CHECK_STR(info.message_id, "<crlf@example.com>");
	CHECK_STR(info.subject, "caf\xc3\xa9 au lait");
	CHECK_EQ(info.tlp_found, 1);
	CHECK_EQ(info.tlp, IL_TLP_AMBER);
	mailhdr_free(&info);

	/* Several CRs before an LF are one line end (as in prepare); a CR
	 * elsewhere is data. */
	CHECK_EQ(parse_str("Message-ID: <cr@x>\r\r\nSubject: a\rb\r\r\n c\r\r\n\r\r\n", &info), 0);
	CHECK_STR(info.message_id, "<cr@x>");
	CHECK_STR(info.subject, "a\rb c");
	mailhdr_free(&info);

	/* A folded Message-ID is unfolded. */
	CHECK_EQ(parse_str("Message-Id:\r\n <folded@example.com>\r\n\r\n", &info), 0);
	CHECK_STR(info.message_id, "<folded@example.com>");
	mailhdr_free(&info);
}

static void test_rfc2047(void)
{
	/* B, utf-8, folded over two lines: the fold between two words goes. */
	CHECK_STR(subject_of("Message-ID: <1@x>\n"
			     "Subject: =?utf-8?B?0J/RgNC40LLQtdGC?=\n"
			     "\t=?utf-8?B?INC80LjRgA==?=\n\n"),
		  "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd0\xbc\xd0\xb8\xd1\x80");
	/* Q, latin1 to UTF-8, with plain text around it. */
	CHECK_STR(subject_of("Message-ID: <1@x>\n"
			     "Subject: Re: =?ISO-8859-1?Q?Sch=F6ne_Gr=FC=DFe?= aus Bern\n\n"),
		  "Re: Sch\xc3\xb6ne Gr\xc3\xbc\xc3\x9f" "e aus Bern");
	/* B, latin1. "Ã©tÃ©" base64 of latin1 "été". */
	CHECK_STR(subject_of("Message-ID: <1@x>\nSubject: =?latin1?B?6XTp?=\n\n"),
		  "\xc3\xa9t\xc3\xa9");
	/* Folded plain Subject keeps the space of the fold. */
	CHECK_STR(subject_of("Message-ID: <1@x>\nSubject: a long\n  subject line\n\n"),
		  "a long  subject line");
	/* Adjacent words with several spaces and tabs: joined. */
	CHECK_STR(subject_of("Message-ID: <1@x>\n"
			     "Subject: =?us-ascii?q?a?=  \t =?US-ASCII?Q?b?= c =?utf-8?q?d?=\n\n"),
		  "ab c d");
	/* Mixed B and Q, utf-8 and latin1, folded with CRLF. */
	CHECK_STR(subject_of("Message-ID: <1@x>\r\n"
			     "Subject: [sec] =?UTF-8?B?4pyT?=\r\n"
			     " =?iso-8859-1?q?_r=E9solu?=\r\n\r\n"),
		  "[sec] \xe2\x9c\x93 r\xc3\xa9solu");
	/* Unpadded base64 and an RFC 2231 language suffix. */
	CHECK_STR(subject_of("Message-ID: <1@x>\nSubject: =?utf-8*en?B?aGk?=\n\n"), "hi");
	/* The whole base64 alphabet: "+/8=" is 0xfb 0xff. */
	CHECK_STR(subject_of("Message-ID: <1@x>\nSubject: =?x-unknown?b?+/8=?=\n\n"), "\xfb\xff");
	/* Other charsets keep their bytes. */
	CHECK_STR(subject_of("Message-ID: <1@x>\nSubject: =?koi8-r?B?8NLJ1w==?=\n\n"),
		  "\xf0\xd2\xc9\xd7");
	/* Malformed words are kept as written, and whitespace next to them. */
	CHECK_STR(subject_of("Message-ID: <1@x>\nSubject: =?utf-8?X?abc?= x\n\n"),
		  "=?utf-8?X?abc?= x");
	CHECK_STR(subject_of("Message-ID: <1@x>\nSubject: =?utf-8?B?a?= =?utf-8?Q?=ZZ?=\n\n"),
		  "=?utf-8?B?a?= =?utf-8?Q?=ZZ?=");
	CHECK_STR(subject_of("Message-ID: <1@x>\nSubject: =?utf-8?Q?ok?= =?utf-8?Q?\n\n"),
		  "ok =?utf-8?Q?");
	CHECK_STR(subject_of("Message-ID: <1@x>\nSubject: =??Q?a?= =?utf-8??a?= =?=?=\n\n"),
		  "=??Q?a?= =?utf-8??a?= =?=?=");
	CHECK_STR(subject_of("Message-ID: <1@x>\nSubject: =?utf-8?Q?a b?=\n\n"),
		  "=?utf-8?Q?a b?=");
	/* A word hiding NUL or a line break stays encoded. */
	CHECK_STR(subject_of("Message-ID: <1@x>\nSubject: =?utf-8?Q?a=00b?=\n\n"),
		  "=?utf-8?Q?a=00b?=");
	CHECK_STR(subject_of("Message-ID: <1@x>\nSubject: =?utf-8?B?YQpC?=\n\n"),
		  "=?utf-8?B?YQpC?=");
	/* Raw UTF-8 (RFC 6532) passes through. */
	CHECK_STR(subject_of("Message-ID: <1@x>\nSubject: gr\xc3\xbc\xc3\x9f\n\n"),
		  "gr\xc3\xbc\xc3\x9f");
}

struct tlp_case {
	const char *hdrs;
	int found;
	enum il_tlp tlp;
	int unknown;
};

static void test_tlp(void)
{
	static const struct tlp_case cases[] = {
		{ "TLP: AMBER\n", 1, IL_TLP_AMBER, 0 },
		{ "TLP:amber+strict\n", 1, IL_TLP_AMBER_STRICT, 0 },
		{ "tlp:   red   \n", 1, IL_TLP_RED, 0 },
		{ "TLP: WHITE\n", 1, IL_TLP_CLEAR, 0 },
		{ "TLP: clear\n", 1, IL_TLP_CLEAR, 0 },
		{ "TLP: purple\n", 1, IL_TLP_RED, 1 },
		{ "TLP:\n", 1, IL_TLP_RED, 1 },
		{ "Subject: [TLP:RED] outage\n", 1, IL_TLP_RED, 0 },
		{ "Subject: Re: [tlp:green] x\n", 1, IL_TLP_GREEN, 0 },
		{ "Subject: [TLP: AMBER] y\n", 1, IL_TLP_AMBER, 0 },
		{ "Subject: [ TLP : Amber+Strict ] y\n", 1, IL_TLP_AMBER_STRICT, 0 },
		{ "Subject: [TLP:WHITE] y\n", 1, IL_TLP_CLEAR, 0 },
		{ "Subject: [TLP:BLUE] y\n", 1, IL_TLP_RED, 1 },
		{ "Subject: [TLP] [TLP:GREEN [TLP:RED y\n", 0, IL_TLP_CLEAR, 0 },
		{ "Subject: [TLPX:RED] [xTLP:RED] TLP:RED y\n", 0, IL_TLP_CLEAR, 0 },
		{ "Subject: [[TLP:GREEN]] y\n", 1, IL_TLP_GREEN, 0 },
		/* Both: the stricter wins, whichever is where. */
		{ "TLP: GREEN\nSubject: [TLP:AMBER] z\n", 1, IL_TLP_AMBER, 0 },
		{ "TLP: RED\nSubject: [TLP:CLEAR] z\n", 1, IL_TLP_RED, 0 },
		{ "Subject: [TLP:GREEN] Fwd: [TLP:AMBER+STRICT] z\n", 1, IL_TLP_AMBER_STRICT, 0 },
		{ "TLP: green\nTLP: amber\n", 1, IL_TLP_AMBER, 0 },
		{ "TLP: bogus\nSubject: [TLP:GREEN] z\n", 1, IL_TLP_RED, 1 },
		/* The tag is found after RFC 2047 decoding. */
		{ "Subject: =?utf-8?Q?=5BTLP=3AAMBER=5D_r=C3=A9seau?=\n", 1, IL_TLP_AMBER, 0 },
		{ "Subject: =?utf-8?B?W1RMUDpSRURd?= down\n", 1, IL_TLP_RED, 0 },
		/* A second Subject's tag still counts. */
		{ "Subject: plain\nSubject: [TLP:RED]\n", 1, IL_TLP_RED, 0 },
		/* X-TLP is not TLP. */
		{ "X-TLP: RED\n", 0, IL_TLP_CLEAR, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[512];
		struct il_mailinfo info;
		snprintf(buf, sizeof(buf), "From: a@b\nMessage-ID: <t%zu@x>\n%s\nbody [TLP:RED]\nTLP: RED\n",
			 i, cases[i].hdrs);
		int rc = parse_str(buf, &info);
		CHECK_EQ(rc, 0);
		if (info.tlp_found != cases[i].found || info.tlp != cases[i].tlp ||
		    info.tlp_unknown != cases[i].unknown)
			fprintf(stderr, "tlp case %zu: %s", i, cases[i].hdrs);
		CHECK_EQ(info.tlp_found, cases[i].found);
		CHECK_EQ(info.tlp, cases[i].tlp);
		CHECK_EQ(info.tlp_unknown, cases[i].unknown);
		mailhdr_free(&info);
	}
}

static void test_interlist_id(void)
{
	struct il_mailinfo info;
	const char *m =
		"Message-ID: <id@x>\n"
		"X-Interlist-Id: 00112233445566778899aabbccddeeffFFEEDDCCBBAA99887766554433221100\n"
		"\n";
	CHECK_EQ(parse_str(m, &info), 0);
	CHECK_EQ(info.has_interlist_id, 1);
	CHECK_EQ(info.interlist_id[0], 0x00);
	CHECK_EQ(info.interlist_id[1], 0x11);
	CHECK_EQ(info.interlist_id[15], 0xff);
	CHECK_EQ(info.interlist_id[16], 0xff);
	CHECK_EQ(info.interlist_id[31], 0x00);
	mailhdr_free(&info);

	/* Folded, lower-case name: still found. */
	CHECK_EQ(parse_str("x-interlist-id:\n"
			   " aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
			   "Message-ID: <id@x>\n\n",
			   &info),
		 0);
	CHECK_EQ(info.has_interlist_id, 1);
	CHECK_EQ(info.interlist_id[5], 0xaa);
	mailhdr_free(&info);

	/* The first valid one counts; an invalid one before it does not hide it. */
	CHECK_EQ(parse_str("Message-ID: <id@x>\n"
			   "X-Interlist-Id: nonsense\n"
			   "X-Interlist-Id: 0100000000000000000000000000000000000000000000000000000000000000\n"
			   "X-Interlist-Id: 0200000000000000000000000000000000000000000000000000000000000000\n\n",
			   &info),
		 0);
	CHECK_EQ(info.has_interlist_id, 1);
	CHECK_EQ(info.interlist_id[0], 1);
	mailhdr_free(&info);

	static const char *const bad[] = {
		"X-Interlist-Id: 0011\n",                                                       /* short */
		"X-Interlist-Id: 00112233445566778899aabbccddeeff00112233445566778899aabbccddeef\n",   /* 63 */
		"X-Interlist-Id: 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0\n", /* 65 */
		"X-Interlist-Id: 00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg\n",  /* g */
		"X-Interlist-Id: 0011223344556677 8899aabbccddeeff00112233445566778899aabbccddeef\n",
		"X-Interlist-Idx: 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char buf[256];
		snprintf(buf, sizeof(buf), "Message-ID: <id@x>\n%s\n", bad[i]);
		CHECK_EQ(parse_str(buf, &info), 0);
		CHECK_EQ(info.has_interlist_id, 0);
		mailhdr_free(&info);
	}
	/* The body is never read. */
	CHECK_EQ(parse_str("Message-ID: <id@x>\n\n"
			   "X-Interlist-Id: 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
			   &info),
		 0);
	CHECK_EQ(info.has_interlist_id, 0);
	mailhdr_free(&info);
}

/* X-Interlist-Time: the origin time the relay writes next to the id. */
static void test_interlist_time(void)
{
	struct il_mailinfo info;
	CHECK_EQ(parse_str("Message-ID: <id@x>\n"
			   "X-Interlist-Time: 2001-02-03T04:05:06.789\n"
			   "X-Interlist-Time: 2023-11-14T22:13:20.042Z\n"
			   "X-Interlist-Time: 2024-01-01T00:00:00.000Z\n\n",
			   &info),
		 0);
	CHECK_EQ(info.has_interlist_time, 1);     /* the first valid one */
	CHECK(info.interlist_time_ms == 1700000000042LL);
	mailhdr_free(&info);
	CHECK_EQ(parse_str("Message-ID: <id@x>\n\n", &info), 0);
	CHECK_EQ(info.has_interlist_time, 0);
	mailhdr_free(&info);
	/* prepare strips it with the other relay headers. */
	const char *m = "Message-ID: <id@x>\nX-Interlist-Time: 2023-11-14T22:13:20.042Z\n\nbody\n";
	uint8_t *out = NULL;
	size_t olen = 0;
	CHECK_EQ(mailhdr_prepare((const uint8_t *)m, strlen(m), &out, &olen), 0);
	CHECK(olen == strlen("Message-ID: <id@x>\n\nbody\n") &&
	      memcmp(out, "Message-ID: <id@x>\n\nbody\n", olen) == 0);
	free(out);
}

static void test_errors(void)
{
	struct il_mailinfo info;
	memset(&info, 0xa5, sizeof(info));

	/* Missing, empty, or only in the body. */
	CHECK_EQ(parse_str("From: a@b\nSubject: hi\n\nbody\n", &info), IL_ENOMSGID);
	CHECK(info.message_id == NULL && info.subject == NULL);
	CHECK_EQ(parse_str("Message-ID:   \nSubject: hi\n\n", &info), IL_ENOMSGID);
	CHECK_EQ(parse_str("Message-ID:\nMessage-ID: <late@x>\n\n", &info), 0);
	CHECK_STR(info.message_id, "<late@x>");
	mailhdr_free(&info);
	CHECK_EQ(parse_str("From: a@b\n\nMessage-ID: <in-body@x>\n", &info), IL_ENOMSGID);
	CHECK_EQ(parse_str("Resent-Message-ID: <r@x>\n\n", &info), IL_ENOMSGID);

	/* Not mail. */
	CHECK_EQ(mailhdr_parse((const uint8_t *)"", 0, MAX, &info), IL_ENOTMAIL);
	CHECK_EQ(mailhdr_parse(NULL, 0, MAX, &info), IL_ENOTMAIL);
	/* An empty header is read (prepare makes those), it has no Message-ID. */
	CHECK_EQ(parse_str("\n", &info), IL_ENOMSGID);
	CHECK_EQ(parse_str("\r\nbody\r\n", &info), IL_ENOMSGID);
	CHECK_EQ(parse_str("Message-ID: <a@b>\nSubject: x\n", &info), IL_ENOTMAIL);
	CHECK_EQ(parse_str("Message-ID: <a@b>\nSubject: x", &info), IL_ENOTMAIL);
	CHECK_EQ(parse_str("Message-ID: <a@b>\r\nSubject: x\r\n\r", &info), IL_ENOTMAIL);
	CHECK_EQ(parse_str(" Message-ID: <a@b>\n\n", &info), IL_ENOTMAIL);
	CHECK_EQ(parse_str("\tcontinued\nMessage-ID: <a@b>\n\n", &info), IL_ENOTMAIL);
	CHECK_EQ(parse_str("Message-ID: <a@b>\nno colon here\n\n", &info), IL_ENOTMAIL);
	CHECK_EQ(parse_str("Message-ID: <a@b>\n: empty name\n\n", &info), IL_ENOTMAIL);
	CHECK_EQ(parse_str("Message-ID: <a@b>\nSub ject: x\n\n", &info), IL_ENOTMAIL);
	CHECK_EQ(parse_str("Message-ID: <a@b>\nSubject : x\n\n", &info), IL_ENOTMAIL);
	CHECK_EQ(parse_str("Message-ID: <a@b>\nSubj\x7f" "ect: x\n\n", &info), IL_ENOTMAIL);
	CHECK_EQ(parse_str("Message-ID: <a@b>\nSubj\xc3\xa9: x\n\n", &info), IL_ENOTMAIL);
	CHECK_EQ(parse_str("From mbox@example.org Tue Nov 12 09:00:00 2024\nMessage-ID: <a@b>\n\n",
			   &info),
		 IL_ENOTMAIL);
	/* Control bytes in a name; CRs not ending a line are no blank line. */
	CHECK_EQ(parse_str("Message-ID: <a@b>\n\x0bX: y\n\n", &info), IL_ENOTMAIL);
	CHECK_EQ(parse_str("Message-ID: <a@b>\n\r \nbody\n", &info), IL_ENOTMAIL);

	/* NUL in the header (in a value, a name, a continuation), but not
	 * in the body. */
	static const char nul1[] = "Message-ID: <a@b>\nSubject: a\0b\n\nbody\n";
	static const char nul2[] = "Message-ID: <a@b>\nSub\0ject: ab\n\nbody\n";
	static const char nul3[] = "Message-ID: <a@b>\nSubject: ab\n \0\n\nbody\n";
	static const char nul4[] = "Message-ID: <a@b>\nSubject: ab\n\nbo\0dy\n";
	CHECK_EQ(mailhdr_parse((const uint8_t *)nul1, sizeof(nul1) - 1, MAX, &info), IL_ENOTMAIL);
	CHECK_EQ(mailhdr_parse((const uint8_t *)nul2, sizeof(nul2) - 1, MAX, &info), IL_ENOTMAIL);
	CHECK_EQ(mailhdr_parse((const uint8_t *)nul3, sizeof(nul3) - 1, MAX, &info), IL_ENOTMAIL);
	CHECK_EQ(mailhdr_parse((const uint8_t *)nul4, sizeof(nul4) - 1, MAX, &info), 0);
	mailhdr_free(&info);

	/* Size: checked first, even for garbage; exactly max is fine. */
	const char *ok = "Message-ID: <a@b>\n\nbody\n";
	size_t n = strlen(ok);
	CHECK_EQ(mailhdr_parse((const uint8_t *)ok, n, n - 1, &info), IL_ETOOLARGE);
	CHECK_EQ(mailhdr_parse((const uint8_t *)"\0\0\0", 3, 2, &info), IL_ETOOLARGE);
	CHECK_EQ(mailhdr_parse((const uint8_t *)ok, n, n, &info), 0);
	mailhdr_free(&info);
}

/* The parser must not read past len: copy the message to the very end of
 * a heap block (ASan catches one byte more) and cut it at every length. */
static void test_bounds(void)
{
	const char *m = "Message-ID: <b@x>\r\nSubject: =?utf-8?B?aGk=?= [TLP:AMBER]\r\n"
			"TLP: green\r\nX-Interlist-Id: "
			"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\r\n\r\nb\r";
	size_t n = strlen(m);
	for (size_t cut = 0; cut <= n; cut++) {
		uint8_t *buf = malloc(cut ? cut : 1);
		uint8_t *out;
		size_t out_len;
		struct il_mailinfo info;
		memcpy(buf, m, cut);
		int rc = mailhdr_parse(buf, cut, MAX, &info);
		int prc = mailhdr_prepare(buf, cut, &out, &out_len);
		CHECK(rc == 0 || rc == IL_ENOTMAIL || rc == IL_ENOMSGID);
		CHECK_EQ(prc == 0, rc == 0 || rc == IL_ENOMSGID);
		if (rc == 0) {
			CHECK_STR(info.subject, "hi [TLP:AMBER]");
			CHECK_EQ(info.tlp, IL_TLP_AMBER);
		}
		mailhdr_free(&info);
		free(out);
		free(buf);
	}
}

static void check_prepare(const char *in, size_t in_len, const char *want)
{
	uint8_t *out = NULL;
	size_t out_len = 0;
	int rc = mailhdr_prepare((const uint8_t *)in, in_len, &out, &out_len);
	CHECK_EQ(rc, 0);
	CHECK_EQ(out_len, strlen(want));
	CHECK(out && out_len == strlen(want) && memcmp(out, want, out_len) == 0);
	if (out && (out_len != strlen(want) || memcmp(out, want, out_len) != 0))
		fprintf(stderr, "prepare gave: %.*s\n", (int)out_len, (const char *)out);
	free(out);
}

static void test_prepare(void)
{
	const char *in =
		"Received: from relay.example.net\r\n"
		"\tby lists.example.org; Tue, 12 Nov 2024 09:00:00 +0100\r\n"
		"X-Interlist-Id: 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\r\n"
		"From: Alice <alice@example.org>\r\n"
		"x-interlist-path: centr,\r\n"
		"  lactld,\r\n"
		"\tdns-oarc\r\n"
		"Message-ID: <p@example.org>\r\n"
		"X-INTERLIST-TLP: CLEAR\r\n"
		"X-Interlisting: kept (not the prefix)\r\n"
		"Subject: forged relay headers\r\n"
		"X-Interlist-Sig:\r\n"
		" abc\r\n"
		"\r\n"
		"Please see below.\r\n"
		"X-Interlist-Id: 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\r\n"
		"x-interlist-path: quoted in the body\r\n"
		"lone\rcr\r\n"
		"no final newline\r";
	const char *want =
		"Received: from relay.example.net\n"
		"\tby lists.example.org; Tue, 12 Nov 2024 09:00:00 +0100\n"
		"From: Alice <alice@example.org>\n"
		"Message-ID: <p@example.org>\n"
		"X-Interlisting: kept (not the prefix)\n"
		"Subject: forged relay headers\n"
		"\n"
		"Please see below.\n"
		"X-Interlist-Id: 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
		"x-interlist-path: quoted in the body\n"
		"lone\rcr\n"
		"no final newline\r";
	check_prepare(in, strlen(in), want);

	/* CR runs before LF go with it (no CRLF can remain); other CRs stay. */
	const char *crs = "A: b\r\r\n c\rd\r\n\r\r\nx\r\r\r\ny\rz\r\r";
	check_prepare(crs, strlen(crs), "A: b\n c\rd\n\nx\ny\rz\r\r");

	/* LF input and nothing to strip: unchanged. */
	const char *lf = "From: a@b\nMessage-ID: <x@y>\n\nbody\n\n\n";
	check_prepare(lf, strlen(lf), lf);
	/* The first and the last field stripped; empty body; a header that is
	 * only relay fields (no Message-ID needed here). */
	check_prepare("X-Interlist-A: 1\nFrom: a@b\nX-Interlist-B: 2\n 3\n\n",
		      strlen("X-Interlist-A: 1\nFrom: a@b\nX-Interlist-B: 2\n 3\n\n"), "From: a@b\n\n");
	check_prepare("X-Interlist-Id: x\r\n\r\nb", strlen("X-Interlist-Id: x\r\n\r\nb"), "\nb");
	check_prepare("\nb", 2, "\nb");
	/* Binary body bytes, NUL included, pass. */
	static const char bin[] = "A: b\r\n\r\n\0\xff\r\r\n";
	static const char binw[] = "A: b\n\n\0\xff\n";
	uint8_t *out;
	size_t out_len;
	CHECK_EQ(mailhdr_prepare((const uint8_t *)bin, sizeof(bin) - 1, &out, &out_len), 0);
	CHECK(out_len == sizeof(binw) - 1 && memcmp(out, binw, out_len) == 0);
	free(out);

	/* Refused like parse refuses them; *out stays NULL. */
	static const char *const bad[] = {
		"", "\r", "From: a@b\n", "From: a@b\r\nX-Interlist-Id: 1\r\n", " From: a@b\n\n",
		"From a@b\n\n", "X-Interlist-Id: 1\nbad line\n\n",
	};
	static uint8_t sentinel;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		out = &sentinel;
		CHECK_EQ(mailhdr_prepare((const uint8_t *)bad[i], strlen(bad[i]), &out, &out_len),
			 IL_ENOTMAIL);
		CHECK(out == NULL);
	}
	static const char nul[] = "From: a@b\nX-Interlist-Id: \0\n\n";
	CHECK_EQ(mailhdr_prepare((const uint8_t *)nul, sizeof(nul) - 1, &out, &out_len), IL_ENOTMAIL);
}

/* A few MB of header in several shapes must take linear time; meson's
 * timeout catches a quadratic regression long before it ends. */
static void test_large(void)
{
	const size_t n = 4u << 20;
	static const char *const fills[] = { "=?", "=?a?Q?", "[TLP:", "[", " ", "=?u?B?QQ==?= " };
	for (size_t f = 0; f < sizeof(fills) / sizeof(fills[0]); f++) {
		const char *head = "Message-ID: <big@x>\nSubject: ";
		size_t hl = strlen(head), fl = strlen(fills[f]);
		char *m = malloc(n + 16);
		memcpy(m, head, hl);
		size_t p = hl;
		while (p + fl < n) {
			memcpy(m + p, fills[f], fl);
			p += fl;
		}
		memcpy(m + p, "\n\nbody\n", 7);
		p += 7;
		struct il_mailinfo info;
		CHECK_EQ(mailhdr_parse((const uint8_t *)m, p, n + 16, &info), 0);
		CHECK(info.subject != NULL);
		mailhdr_free(&info);
		free(m);
	}
	/* A relay field with very many continuations, then many short
	 * fields. */
	const char *top = "Message-ID: <big@x>\nX-Interlist-Path: a\n";
	size_t tl = strlen(top), p = tl, nfields = 0;
	char *m = malloc(n + 64);
	memcpy(m, top, tl);
	while (p + 4 < n / 2) {
		memcpy(m + p, " x\r\n", 4);
		p += 4;
	}
	while (p + 3 < n) {
		memcpy(m + p, "A:\n", 3);
		p += 3;
		nfields++;
	}
	m[p++] = '\n';
	uint8_t *out;
	size_t out_len;
	struct il_mailinfo info;
	CHECK_EQ(mailhdr_parse((const uint8_t *)m, p, n + 64, &info), 0);
	mailhdr_free(&info);
	CHECK_EQ(mailhdr_prepare((const uint8_t *)m, p, &out, &out_len), 0);
	CHECK_EQ(out_len, strlen("Message-ID: <big@x>\n") + 3 * nfields + 1);
	free(out);
	free(m);
}

int main(void)
{
	test_basic();
	test_case_and_crlf();
	test_rfc2047();
	test_tlp();
	test_interlist_id();
	test_interlist_time();
	test_errors();
	test_bounds();
	test_prepare();
	test_large();
	return check_done("test_mailhdr");
}
