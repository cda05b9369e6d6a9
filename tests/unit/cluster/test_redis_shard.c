/**
 * @file test_redis_shard.c  Unit tests of the Redis Cluster slot of a name
 *
 * redis_slot() must agree with the server's CLUSTER KEYSLOT, or a channel
 * would be SSUBSCRIBEd and SPUBLISHed on a master that does not serve it
 * (MOVED). Known values of the Redis Cluster spec and of a server, and the
 * hash tag rules: only the first {...} counts, and only if not empty.
 */
#include <check.h>
#include <re.h>
#include "log.h"
#include "redis_int.h"


START_TEST(t_known_slots)
{
	/* CRC16("123456789") = 0x31c3, the spec's check value */
	ck_assert_uint_eq(redis_slot("123456789"), 0x31c3);
	ck_assert_uint_eq(redis_slot("foo"), 12182);  /* CLUSTER KEYSLOT */
	ck_assert_uint_eq(redis_slot(""), 0);
}
END_TEST


START_TEST(t_hash_tags)
{
	ck_assert_uint_eq(redis_slot("{rhc}:shtags"), redis_slot("rhc"));
	ck_assert_uint_eq(redis_slot("{rhc}:dlg:0a1b"),
			  redis_slot("{rhc}:node:n1"));
	ck_assert_uint_eq(redis_slot("foo{bar}{zap}"), redis_slot("bar"));
	ck_assert_uint_eq(redis_slot("foo{{bar}}zap"), redis_slot("{bar"));

	/* an empty or unclosed tag: the whole name */
	ck_assert_uint_ne(redis_slot("foo{}{bar}"), redis_slot("bar"));
	ck_assert_uint_ne(redis_slot("foo{bar"), redis_slot("bar"));
	ck_assert_uint_ne(redis_slot("rhc:repl:A"), redis_slot("rhc"));
}
END_TEST


static Suite *redis_shard_suite(void)
{
	Suite *s = suite_create("redis_shard");
	TCase *tc = tcase_create("slot");

	tcase_add_test(tc, t_known_slots);
	tcase_add_test(tc, t_hash_tags);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	log_set_level(LOG_ERROR);
	return check_main(redis_shard_suite());
}
