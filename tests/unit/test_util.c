/* Unit tests for util, tlp and error helpers. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "il/error.h"
#include "il/tlp.h"
#include "il/util.h"

int main(void)
{
	enum il_tlp t;
	CHECK_EQ(tlp_parse("AMBER+strict", 12, &t), 0);
	CHECK_EQ(t, IL_TLP_AMBER_STRICT);
	CHECK_EQ(tlp_parse("White", 5, &t), 0);
	CHECK_EQ(t, IL_TLP_CLEAR);
	CHECK_EQ(tlp_parse("purple", 6, &t), -EINVAL);
	CHECK_EQ(tlp_parse("amber", 4, &t), -EINVAL);
	CHECK_STR(tlp_name(IL_TLP_AMBER_STRICT), "AMBER+STRICT");

	CHECK_STR(il_strerror(IL_EBADSIG), "signature does not verify");
	CHECK_STR(il_strerror(-ENOENT), "No such file or directory");

	uint8_t buf[8];
	util_put_u64(buf, 0x0102030405060708ULL);
	CHECK(util_get_u64(buf) == 0x0102030405060708ULL);
	util_put_u16(buf, 0xbeef);
	CHECK_EQ(util_get_u16(buf), 0xbeef);

	char *dir = check_tmpdir();
	char path[256];
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	CHECK_EQ(util_mkdirs(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/f", dir);
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	CHECK(write(fd, "hello", 5) == 5);
	close(fd);
	uint8_t *data;
	size_t len;
	CHECK_EQ(util_read_file(path, 100, &data, &len), 0);
	CHECK_EQ(len, 5);
	CHECK(memcmp(data, "hello", 6) == 0);
	free(data);
	CHECK_EQ(util_read_file(path, 4, &data, &len), IL_ETOOLARGE);

	/* RFC 3339 with milliseconds, and back, exactly. */
	char ts[32];
	int64_t ms = 0;
	util_time_str(1700000000042LL, ts);
	CHECK_STR(ts, "2023-11-14T22:13:20.042Z");
	CHECK_EQ(util_time_parse(ts, strlen(ts), &ms), 0);
	CHECK(ms == 1700000000042LL);
	static const int64_t round[] = { 0, 999, 951782400000LL, 4102444799999LL };
	for (size_t i = 0; i < sizeof(round) / sizeof(round[0]); i++) {
		util_time_str(round[i], ts);
		CHECK_EQ(util_time_parse(ts, strlen(ts), &ms), 0);
		CHECK(ms == round[i]);
	}
	static const char *const bad[] = {
		"2023-11-14T22:13:20.042", "2023-11-14T22:13:20Z", "2023-11-14 22:13:20.042Z",
		"2023-02-30T00:00:00.000Z", "2023-13-01T00:00:00.000Z", "2023-11-14T24:00:00.000Z",
		"2023-11-14T22:13:60.000Z", "+023-11-14T22:13:20.042Z", "2023-11-14T22:13:20.04xZ",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(util_time_parse(bad[i], strlen(bad[i]), &ms), -1);
	CHECK_EQ(util_time_parse(ts, strlen(ts) - 1, &ms), -1);
	return check_done("test_util");
}
