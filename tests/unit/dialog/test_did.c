/**
 * @file test_did.c  Unit tests of dialog ids and the Contact user part
 *
 * Uniqueness is checked by drawing many ids and sorting them; the string
 * forms are checked both ways, with and without a leg's key, with every
 * kind of bad input the decoders must refuse (an endpoint can put anything
 * in a Request-URI).
 */
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include "did.h"

enum { DRAWS = 100000 };


static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}


START_TEST(test_new_nonzero_distinct)
{
	uint64_t *v = calloc(DRAWS, sizeof(*v));

	ck_assert_ptr_nonnull(v);

	for (size_t i = 0; i < DRAWS; i++) {
		v[i] = did_new();
		ck_assert_uint_ne(v[i], 0);
	}

	qsort(v, DRAWS, sizeof(*v), u64_cmp);
	for (size_t i = 1; i < DRAWS; i++)
		ck_assert_uint_ne(v[i - 1], v[i]);

	free(v);
}
END_TEST


START_TEST(test_encode_format)
{
	char buf[DID_STRSZ];

	ck_assert_int_eq(did_encode(buf, sizeof(buf), 1), 0);
	ck_assert_str_eq(buf, "0000000000000001");

	ck_assert_int_eq(did_encode(buf, sizeof(buf), UINT64_MAX), 0);
	ck_assert_str_eq(buf, "ffffffffffffffff");

	ck_assert_int_eq(did_encode(buf, sizeof(buf), 0xfedcba9876543210ULL),
			 0);
	ck_assert_str_eq(buf, "fedcba9876543210");

	ck_assert_int_eq(did_encode(buf, DID_STRSZ - 1, 1), EINVAL);
	ck_assert_int_eq(did_encode(NULL, DID_STRSZ, 1), EINVAL);
}
END_TEST


START_TEST(test_encode_decode_roundtrip)
{
	char buf[DID_STRSZ];

	for (int i = 0; i < 1000; i++) {
		uint64_t did = did_new(), out = 0;
		struct pl pl;

		ck_assert_int_eq(did_encode(buf, sizeof(buf), did), 0);
		ck_assert_uint_eq(strlen(buf), 16);

		pl_set_str(&pl, buf);
		ck_assert_int_eq(did_decode(&out, &pl), 0);
		ck_assert_uint_eq(out, did);
	}
}
END_TEST


START_TEST(test_decode_accepts_upper_case)
{
	struct pl pl = PL("FEDCBA9876543210");
	uint64_t did = 0;

	ck_assert_int_eq(did_decode(&did, &pl), 0);
	ck_assert_uint_eq(did, 0xfedcba9876543210ULL);
}
END_TEST


START_TEST(test_decode_rejects_bad)
{
	static const char *bad[] = {
		"",
		"123456789abcdef",            /* 15 digits */
		"0123456789abcdef0",          /* 17 digits */
		"0123456789abcdeg",           /* not hex */
		"0123456789abcde ",
		"-123456789abcdef",
		"0x23456789abcdef",
		"0000000000000000",           /* zero is never a did */
	};
	uint64_t did = 42;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct pl pl;

		pl_set_str(&pl, bad[i]);
		ck_assert_msg(did_decode(&did, &pl) == EINVAL,
			      "accepted '%s'", bad[i]);
		ck_assert_uint_eq(did, 42);
	}

	ck_assert_int_eq(did_decode(&did, NULL), EINVAL);
}
END_TEST


START_TEST(test_contact_user_roundtrip)
{
	char buf[DID_USER_SZ];

	for (unsigned leg = 0; leg <= 1; leg++) {
		uint64_t did = did_new(), key = did_new(), out = 0, outkey = 0;
		unsigned outleg = 7;
		struct pl pl;

		ck_assert_int_eq(did_contact_user(buf, sizeof(buf), did, leg,
						  key), 0);
		ck_assert_uint_eq(strlen(buf), 38);
		ck_assert_int_eq(strncmp(buf, "rh-", 3), 0);
		ck_assert_int_eq(buf[20], leg ? 'b' : 'a');

		pl_set_str(&pl, buf);
		ck_assert_int_eq(did_contact_user_decode(&out, &outleg,
							 &outkey, &pl), 0);
		ck_assert_uint_eq(out, did);
		ck_assert_uint_eq(outleg, leg);
		ck_assert_uint_eq(outkey, key);
	}
}
END_TEST


START_TEST(test_contact_user_format)
{
	char buf[DID_USER_SZ];

	ck_assert_int_eq(did_contact_user(buf, sizeof(buf),
					  0x0123456789abcdefULL, 1,
					  0xfedcba9876543210ULL), 0);
	ck_assert_str_eq(buf, "rh-0123456789abcdef-b-fedcba9876543210");

	ck_assert_int_eq(did_contact_user(buf, sizeof(buf), 1, 0, 2), 0);
	ck_assert_str_eq(buf, "rh-0000000000000001-a-0000000000000002");
}
END_TEST


/* a dialog from before keys (key 0) keeps the form it was given */
START_TEST(test_contact_user_without_key)
{
	char buf[DID_USER_SZ];
	uint64_t did = 0, key = 42;
	unsigned leg = 7;
	struct pl pl;

	ck_assert_int_eq(did_contact_user(buf, sizeof(buf),
					  0x0123456789abcdefULL, 0, 0), 0);
	ck_assert_str_eq(buf, "rh-0123456789abcdef-a");

	pl_set_str(&pl, buf);
	ck_assert_int_eq(did_contact_user_decode(&did, &leg, &key, &pl), 0);
	ck_assert_uint_eq(did, 0x0123456789abcdefULL);
	ck_assert_uint_eq(leg, 0);
	ck_assert_uint_eq(key, 0);
}
END_TEST


START_TEST(test_contact_user_bad_args)
{
	char buf[DID_USER_SZ];
	uint64_t did, key;
	unsigned leg;
	struct pl pl = PL("rh-0123456789abcdef-a");

	ck_assert_int_eq(did_contact_user(buf, sizeof(buf), 1, 2, 1), EINVAL);
	ck_assert_int_eq(did_contact_user(buf, 21, 1, 0, 0), EINVAL);
	ck_assert_int_eq(did_contact_user(buf, 22, 1, 0, 0), 0);
	ck_assert_int_eq(did_contact_user(buf, 38, 1, 0, 1), EINVAL);
	ck_assert_int_eq(did_contact_user(buf, 39, 1, 0, 1), 0);
	ck_assert_int_eq(did_contact_user(NULL, sizeof(buf), 1, 0, 1),
			 EINVAL);

	ck_assert_int_eq(did_contact_user_decode(NULL, &leg, &key, &pl),
			 EINVAL);
	ck_assert_int_eq(did_contact_user_decode(&did, NULL, &key, &pl),
			 EINVAL);
	ck_assert_int_eq(did_contact_user_decode(&did, &leg, NULL, &pl),
			 EINVAL);
	ck_assert_int_eq(did_contact_user_decode(&did, &leg, &key, NULL),
			 EINVAL);
}
END_TEST


START_TEST(test_contact_user_decode_rejects_garbage)
{
	static const char *bad[] = {
		"",
		"rh-",
		"alice",
		"rh-0123456789abcdef",          /* no leg */
		"rh-0123456789abcdef-",
		"rh-0123456789abcdef-c",        /* unknown leg */
		"rh-0123456789abcdef-A",
		"rh-0123456789abcdef_a",        /* wrong separator */
		"rx-0123456789abcdef-a",        /* wrong prefix */
		"rh-0123456789abcdeg-a",        /* not hex */
		"rh-0000000000000000-a",        /* zero did */
		"rh-0123456789abcdef-ab",       /* too long */
		"rh-123456789abcdef-a",         /* too short */
		"rh-0123456789abcdef-a-",       /* empty key */
		"rh-0123456789abcdef-a-fedcba987654321",   /* short key */
		"rh-0123456789abcdef-a-fedcba98765432100", /* long key */
		"rh-0123456789abcdef-a_fedcba9876543210",  /* separator */
		"rh-0123456789abcdef-afedcba98765432100",
		"rh-0123456789abcdef-a-fedcba987654321g",  /* not hex */
		"rh-0123456789abcdef-a-0000000000000000",  /* zero key */
		"rh-0123456789abcdef-c-fedcba9876543210",  /* unknown leg */
		"rh-0123456789abcdeg-a-fedcba9876543210",  /* did not hex */
	};
	uint64_t did = 42, key = 43;
	unsigned leg = 7;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct pl pl;

		pl_set_str(&pl, bad[i]);
		ck_assert_msg(did_contact_user_decode(&did, &leg, &key, &pl) ==
			      EINVAL, "accepted '%s'", bad[i]);
		ck_assert_uint_eq(did, 42);
		ck_assert_uint_eq(leg, 7);
		ck_assert_uint_eq(key, 43);
	}
}
END_TEST


static Suite *did_suite(void)
{
	Suite *s = suite_create("did");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_new_nonzero_distinct);
	tcase_add_test(tc, test_encode_format);
	tcase_add_test(tc, test_encode_decode_roundtrip);
	tcase_add_test(tc, test_decode_accepts_upper_case);
	tcase_add_test(tc, test_decode_rejects_bad);
	tcase_add_test(tc, test_contact_user_roundtrip);
	tcase_add_test(tc, test_contact_user_format);
	tcase_add_test(tc, test_contact_user_without_key);
	tcase_add_test(tc, test_contact_user_bad_args);
	tcase_add_test(tc, test_contact_user_decode_rejects_garbage);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(did_suite());
}
