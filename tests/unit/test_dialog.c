/**
 * @file test_dialog.c  Unit tests of the dialog table and dialog helpers
 *
 * Each test gets a fresh table (checked fixture) and an observer that
 * records what it was told, so notifications can be counted exactly.
 */
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include "cseq.h"
#include "dialog.h"

static struct {
	unsigned calls;
	enum dialog_event last_ev;
	struct dialog *last_dlg;
	bool in_table;          /* was the dialog still findable when told */
} seen;


static void observer(struct dialog *dlg, enum dialog_event ev)
{
	seen.calls++;
	seen.last_ev = ev;
	seen.last_dlg = dlg;
	seen.in_table = dialog_lookup(dlg->did) == dlg;
}


static void setup(void)
{
	memset(&seen, 0, sizeof(seen));
	ck_assert_int_eq(dialog_table_init(4), 0);
	dialog_set_observer(observer);
}


static void teardown(void)
{
	dialog_table_close();
}


static struct dialog *new_dialog(uint64_t did)
{
	struct dialog *dlg = NULL;

	ck_assert_int_eq(dialog_alloc(&dlg, did), 0);
	ck_assert_ptr_nonnull(dlg);
	return dlg;
}


START_TEST(test_alloc_defaults)
{
	struct dialog *dlg = new_dialog(0x1234);
	uint64_t now = dialog_now();

	ck_assert_uint_eq(dlg->did, 0x1234);
	ck_assert_int_eq(dlg->state, DIALOG_EARLY);
	ck_assert_uint_le(dlg->created, now);
	ck_assert_uint_ge(dlg->created + 1000, now);
	ck_assert_uint_eq(dlg->updated, dlg->created);
	ck_assert_int_eq(dlg->leg[LEG_CALLER].tp, SIP_TRANSP_UDP);
	ck_assert_int_eq(dlg->leg[LEG_CALLEE].tp, SIP_TRANSP_UDP);
	ck_assert_ptr_null(dlg->callid);
	mem_deref(dlg);

	ck_assert_int_eq(dialog_alloc(&dlg, 0), EINVAL);
	ck_assert_int_eq(dialog_alloc(NULL, 1), EINVAL);
}
END_TEST


START_TEST(test_table_init_twice)
{
	ck_assert_int_eq(dialog_table_init(4), EALREADY);
}
END_TEST


START_TEST(test_insert_lookup_remove)
{
	struct dialog *a = new_dialog(0x100000001ULL);
	struct dialog *b = new_dialog(0x200000001ULL);  /* same low bits */

	ck_assert_uint_eq(dialog_count(), 0);
	ck_assert_int_eq(dialog_insert(a), 0);
	ck_assert_int_eq(dialog_insert(b), 0);
	ck_assert_uint_eq(dialog_count(), 2);

	/* inserting the same dialog again changes nothing */
	ck_assert_int_eq(dialog_insert(a), 0);
	ck_assert_uint_eq(dialog_count(), 2);

	ck_assert_ptr_eq(dialog_lookup(0x100000001ULL), a);
	ck_assert_ptr_eq(dialog_lookup(0x200000001ULL), b);
	ck_assert_ptr_null(dialog_lookup(0x300000001ULL));

	dialog_remove(a);
	ck_assert_uint_eq(dialog_count(), 1);
	ck_assert_ptr_null(dialog_lookup(0x100000001ULL));
	ck_assert_ptr_eq(dialog_lookup(0x200000001ULL), b);

	/* removing twice is harmless */
	dialog_remove(a);
	ck_assert_uint_eq(dialog_count(), 1);

	mem_deref(a);
	mem_deref(b);   /* the table still holds b */
	ck_assert_uint_eq(dialog_lookup(0x200000001ULL)->did, 0x200000001ULL);
}
END_TEST


START_TEST(test_insert_refuses_duplicate_did)
{
	struct dialog *a = new_dialog(77), *b = new_dialog(77);

	ck_assert_int_eq(dialog_insert(a), 0);
	ck_assert_int_eq(dialog_insert(b), EEXIST);
	ck_assert_uint_eq(dialog_count(), 1);
	ck_assert_ptr_eq(dialog_lookup(77), a);

	mem_deref(a);
	mem_deref(b);
}
END_TEST


START_TEST(test_table_keeps_reference)
{
	struct dialog *dlg = new_dialog(5);

	dialog_insert(dlg);
	mem_deref(dlg);
	ck_assert_ptr_eq(dialog_lookup(5), dlg);
	ck_assert_int_eq(dialog_set_str(&dlg->callid, &(struct pl)PL("x")), 0);

	/* teardown's dialog_table_close frees it (ASan checks) */
}
END_TEST


static bool count_handler(struct dialog *dlg, void *arg)
{
	unsigned *n = arg;
	(void)dlg;

	++*n;
	return false;
}


static bool find_handler(struct dialog *dlg, void *arg)
{
	return dlg->did == *(uint64_t *)arg;
}


START_TEST(test_apply)
{
	uint64_t want = 13;
	unsigned n = 0;

	for (uint64_t did = 1; did <= 20; did++) {
		struct dialog *dlg = new_dialog(did);

		dialog_insert(dlg);
		mem_deref(dlg);
	}
	ck_assert_uint_eq(dialog_count(), 20);

	ck_assert_ptr_null(dialog_apply(count_handler, &n));
	ck_assert_uint_eq(n, 20);

	ck_assert_ptr_eq(dialog_apply(find_handler, &want), dialog_lookup(13));
	ck_assert_uint_eq(dialog_apply(find_handler, &want)->did, 13);

	ck_assert_ptr_null(dialog_apply(NULL, NULL));
}
END_TEST


START_TEST(test_changed_bumps_and_notifies)
{
	struct dialog *dlg = new_dialog(9);

	dialog_insert(dlg);
	dlg->updated = 0;

	dialog_changed(dlg, DIALOG_EV_CONFIRMED);
	ck_assert_uint_eq(dlg->version, 1);
	ck_assert_uint_gt(dlg->updated, 0);
	ck_assert_uint_eq(seen.calls, 1);
	ck_assert_int_eq(seen.last_ev, DIALOG_EV_CONFIRMED);
	ck_assert_ptr_eq(seen.last_dlg, dlg);

	dialog_changed(dlg, DIALOG_EV_UPDATED);
	ck_assert_uint_eq(dlg->version, 2);
	ck_assert_uint_eq(seen.calls, 2);

	mem_deref(dlg);
}
END_TEST


START_TEST(test_end_notifies_once_and_removes)
{
	struct dialog *dlg = new_dialog(11);

	dialog_insert(dlg);

	dialog_end(dlg);
	ck_assert_uint_eq(seen.calls, 1);
	ck_assert_int_eq(seen.last_ev, DIALOG_EV_ENDED);
	ck_assert_ptr_eq(seen.last_dlg, dlg);
	ck_assert(seen.in_table);   /* told before it leaves */
	ck_assert_int_eq(dlg->state, DIALOG_ENDED);
	ck_assert_ptr_null(dialog_lookup(11));
	ck_assert_uint_eq(dialog_count(), 0);

	dialog_end(dlg);
	ck_assert_uint_eq(seen.calls, 1);

	mem_deref(dlg);
}
END_TEST


START_TEST(test_end_only_table_reference)
{
	struct dialog *dlg = new_dialog(12);

	dialog_insert(dlg);
	mem_deref(dlg);

	/* dialog_end must not touch the dialog after the last deref */
	dialog_end(dialog_lookup(12));
	ck_assert_uint_eq(seen.calls, 1);
	ck_assert_uint_eq(dialog_count(), 0);
}
END_TEST


START_TEST(test_replica_does_not_notify)
{
	struct dialog *dlg = new_dialog(21);

	dlg->replica = true;
	dialog_insert(dlg);

	dialog_changed(dlg, DIALOG_EV_UPDATED);
	ck_assert_uint_eq(dlg->version, 1);
	dialog_end(dlg);
	ck_assert_uint_eq(seen.calls, 0);
	ck_assert_ptr_null(dialog_lookup(21));

	mem_deref(dlg);
}
END_TEST


START_TEST(test_no_observer)
{
	struct dialog *dlg = new_dialog(22);

	dialog_set_observer(NULL);
	dialog_insert(dlg);
	dialog_changed(dlg, DIALOG_EV_UPDATED);
	dialog_end(dlg);
	ck_assert_uint_eq(seen.calls, 0);
	ck_assert_uint_eq(dialog_count(), 0);

	mem_deref(dlg);
}
END_TEST


START_TEST(test_callee_callid)
{
	struct dialog *dlg = new_dialog(0xfedcba9876543210ULL);
	char buf[32];

	ck_assert_int_eq(dialog_callee_callid(buf, sizeof(buf), dlg), 0);
	ck_assert_str_eq(buf, "rh-fedcba9876543210");
	ck_assert_int_ne(dialog_callee_callid(buf, 8, dlg), 0);
	ck_assert_int_eq(dialog_callee_callid(NULL, 8, dlg), EINVAL);

	mem_deref(dlg);
}
END_TEST


START_TEST(test_from_tag)
{
	struct dialog *dlg = new_dialog(1);
	struct pl tag;

	ck_assert_int_eq(dialog_from_tag(dlg, &tag), EINVAL);

	ck_assert_int_eq(str_dup(&dlg->from,
		"\"Alice\" <sip:alice@127.0.0.1;transport=udp>;tag=a73kszlfl"),
			 0);
	ck_assert_int_eq(dialog_from_tag(dlg, &tag), 0);
	ck_assert_int_eq(pl_strcmp(&tag, "a73kszlfl"), 0);

	dlg->from = mem_deref(dlg->from);
	ck_assert_int_eq(str_dup(&dlg->from,
		"<sip:bob@127.0.0.1>;x=1;tag=88;y=2"), 0);
	ck_assert_int_eq(dialog_from_tag(dlg, &tag), 0);
	ck_assert_int_eq(pl_strcmp(&tag, "88"), 0);

	dlg->from = mem_deref(dlg->from);
	ck_assert_int_eq(str_dup(&dlg->from, "<sip:carol@127.0.0.1>"), 0);
	ck_assert_int_ne(dialog_from_tag(dlg, &tag), 0);

	mem_deref(dlg);
}
END_TEST


START_TEST(test_state_names)
{
	static const enum dialog_state all[] = {
		DIALOG_EARLY, DIALOG_CONFIRMED, DIALOG_ENDED
	};
	enum dialog_state st = DIALOG_ENDED;

	ck_assert_str_eq(dialog_state_name(DIALOG_EARLY), "early");
	ck_assert_str_eq(dialog_state_name(DIALOG_CONFIRMED), "confirmed");
	ck_assert_str_eq(dialog_state_name(DIALOG_ENDED), "ended");
	ck_assert_str_eq(dialog_state_name((enum dialog_state)42), "?");

	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		ck_assert_int_eq(dialog_state_decode(&st,
					dialog_state_name(all[i])), 0);
		ck_assert_int_eq(st, all[i]);
	}

	ck_assert_int_eq(dialog_state_decode(&st, "Early"), EINVAL);
	ck_assert_int_eq(dialog_state_decode(&st, "?"), EINVAL);
	ck_assert_int_eq(dialog_state_decode(&st, NULL), EINVAL);
	ck_assert_int_eq(st, DIALOG_ENDED);

	ck_assert_str_eq(dialog_leg_name(LEG_CALLER), "caller");
	ck_assert_str_eq(dialog_leg_name(LEG_CALLEE), "callee");
}
END_TEST


START_TEST(test_set_str)
{
	struct pl a = PL("sip:a@127.0.0.1"), b = PL("sip:b@127.0.0.1");
	struct pl empty = PL("");
	char *s = NULL;

	ck_assert_int_eq(dialog_set_str(&s, &a), 0);
	ck_assert_str_eq(s, "sip:a@127.0.0.1");
	ck_assert_int_eq(dialog_set_str(&s, &b), 0);
	ck_assert_str_eq(s, "sip:b@127.0.0.1");
	ck_assert_int_eq(dialog_set_str(&s, &empty), 0);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(dialog_set_str(&s, &a), 0);
	ck_assert_int_eq(dialog_set_str(&s, NULL), 0);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(dialog_set_str(NULL, &a), EINVAL);
}
END_TEST


static Suite *dialog_suite(void)
{
	Suite *s = suite_create("dialog");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_alloc_defaults);
	tcase_add_test(tc, test_table_init_twice);
	tcase_add_test(tc, test_insert_lookup_remove);
	tcase_add_test(tc, test_insert_refuses_duplicate_did);
	tcase_add_test(tc, test_table_keeps_reference);
	tcase_add_test(tc, test_apply);
	tcase_add_test(tc, test_changed_bumps_and_notifies);
	tcase_add_test(tc, test_end_notifies_once_and_removes);
	tcase_add_test(tc, test_end_only_table_reference);
	tcase_add_test(tc, test_replica_does_not_notify);
	tcase_add_test(tc, test_no_observer);
	tcase_add_test(tc, test_callee_callid);
	tcase_add_test(tc, test_from_tag);
	tcase_add_test(tc, test_state_names);
	tcase_add_test(tc, test_set_str);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(dialog_suite());
}
