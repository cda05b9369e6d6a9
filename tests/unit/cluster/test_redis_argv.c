/**
 * @file test_redis_argv.c  Unit tests of a hiredis format split into argv
 *
 * The command hiredis builds from the argv (redisFormatCommandArgv) must
 * be byte for byte the one it builds from the format and arguments
 * (redisFormatCommand), for the formats the engine sends: else a script
 * would get other arguments than it did. A format that is not words of a
 * literal or one conversion is refused before any argument is read.
 */
#include <string.h>
#include <check.h>
#include <re.h>
#include "redis_int.h"


static int argv_add(struct redis_argv *a, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = redis_argv_vadd(a, fmt, ap);
	va_end(ap);

	return err;
}


static void assert_same(struct redis_argv *a, char *cmd, int len)
{
	char *mine = NULL;
	int n = redisFormatCommandArgv(&mine, a->argc, a->argv, a->len);

	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(n, len);
	ck_assert_int_eq(memcmp(mine, cmd, (size_t)len), 0);

	redisFreeCommand(mine);
	redisFreeCommand(cmd);
}


START_TEST(t_same_as_hiredis)
{
	static const char blob[] = "sig {\"a\":1}\n{\"b\":\"x y\"}\0tail";
	struct redis_argv a = {0};
	char *cmd = NULL;
	int len;

	ck_assert_int_eq(argv_add(&a, "2 %s %s %s %s %llu %llu %b %llu %s %s",
				  "rhc:dlg:0a", "rhc:shtags", "service",
				  "node 2", 7ULL, 18446744073709551615ULL,
				  blob, sizeof(blob), 60000ULL, "", "1"), 0);
	len = redisFormatCommand(&cmd, "2 %s %s %s %s %llu %llu %b %llu %s %s",
				 "rhc:dlg:0a", "rhc:shtags", "service",
				 "node 2", 7ULL, 18446744073709551615ULL,
				 blob, sizeof(blob), 60000ULL, "", "1");
	ck_assert_int_eq(a.argc, 11);
	assert_same(&a, cmd, len);

	memset(&a, 0, sizeof(a));
	ck_assert_int_eq(argv_add(&a, "  PEXPIRE  %s %d %u %lld ", "k", -5,
				  4000000000U, -9000000000LL), 0);
	len = redisFormatCommand(&cmd, "  PEXPIRE  %s %d %u %lld ", "k", -5,
				 4000000000U, -9000000000LL);
	assert_same(&a, cmd, len);
}
END_TEST


START_TEST(t_after_own_arguments)
{
	struct redis_argv a = {0};
	char *cmd = NULL;
	int len;

	ck_assert_int_eq(redis_argv_add(&a, "EVALSHA", 7), 0);
	ck_assert_int_eq(redis_argv_add(&a, "abc", 3), 0);
	ck_assert_int_eq(argv_add(&a, "1 %s", "key"), 0);
	len = redisFormatCommand(&cmd, "EVALSHA abc 1 %s", "key");
	assert_same(&a, cmd, len);
}
END_TEST


START_TEST(t_refused_untouched)
{
	static const char *const bad[] = {
		"SCAN %s MATCH %s* ", "PUBSUB NUMSUB %s%s", "SET k 100%%",
		"GET %x", "GET %", "INCRBY k %ld",
	};
	struct redis_argv a = {0};
	char many[4 * REDIS_ARGV_MAX + 1] = "";

	ck_assert_int_eq(redis_argv_add(&a, "X", 1), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		ck_assert_int_eq(argv_add(&a, bad[i], "a", "b"), EINVAL);
		ck_assert_int_eq(a.argc, 1);
	}

	for (int i = 0; i < REDIS_ARGV_MAX; i++)
		strcat(many, "%s ");
	ck_assert_int_eq(argv_add(&a, many), E2BIG);
	ck_assert_int_eq(a.argc, 1);

	ck_assert_int_eq(argv_add(NULL, "GET"), EINVAL);
	ck_assert_int_eq(argv_add(&a, NULL), EINVAL);
}
END_TEST


static Suite *argv_suite(void)
{
	Suite *s = suite_create("redis_argv");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, t_same_as_hiredis);
	tcase_add_test(tc, t_after_own_arguments);
	tcase_add_test(tc, t_refused_untouched);
	suite_add_tcase(s, tc);

	return s;
}


#include <stdlib.h>
#include "check_main.h"

int main(void)
{
	return check_main(argv_suite());
}
