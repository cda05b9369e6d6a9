/**
 * @file test_policy_reload.c  The Lua policy host: reloads, watch, SIGHUP
 *
 * A reload replaces the policy only when the new file loads, keeping the
 * old one and its state otherwise; the file is watched (replaced by a
 * rename or edited in place) and SIGHUP reloads it. The fake engine and
 * the loop are in policy_fixture.c.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include "policy.h"
#include "policy_fixture.h"

/* ---- reload ---- */

static const char V1[] =
	"local n = 0\n"
	"return { on_node_up = function()\n"
	"  n = n + 1; rehome.release('v1:' .. n)\n"
	"end }\n";

static const char V2[] =
	"return { on_node_up = function() rehome.release('v2') end }\n";


START_TEST(test_reload)
{
	char msg[256];

	ck_assert_int_eq(fixture_start(V1), 0);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert(spy_has("v1:1"));

	/* syntax error: old policy and its state stay */
	fixture_write_file(fixture_path,
			   "return { on_node_up = function() end end }\n");
	ck_assert_int_eq(policy_reload(msg, sizeof(msg)), EINVAL);
	ck_assert_msg(strstr(msg, "policy.lua:1:"), "%s", msg);
	fixture_assert_error_has("policy.lua:1:");
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert(spy_has("v1:2"));

	/* load-time error, and a misspelt hook */
	fixture_write_file(fixture_path, "error('not today')\n");
	ck_assert_int_eq(policy_reload(msg, sizeof(msg)), EINVAL);
	ck_assert_msg(strstr(msg, "policy.lua:1: not today"), "%s", msg);
	fixture_write_file(fixture_path, "return { on_node_dwon = print }\n");
	ck_assert_int_eq(policy_reload(msg, sizeof(msg)), EINVAL);
	ck_assert_msg(strstr(msg, "unknown hook 'on_node_dwon'"), "%s", msg);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert(spy_has("v1:3"));

	/* a good one replaces it */
	fixture_write_file(fixture_path, V2);
	ck_assert_int_eq(policy_reload(msg, sizeof(msg)), 0);
	ck_assert_ptr_null(policy_last_error());
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert(spy_has("v2"));
}
END_TEST


static const char V3[] =
	"return { on_node_up = function() rehome.release('v3') end }\n";


static bool sees_v2(void)
{
	(void)policy_node_event("n2", POLICY_NODE_UP);
	return spy_has("v2");
}


static bool sees_v3(void)
{
	(void)policy_node_event("n2", POLICY_NODE_UP);
	return spy_has("v3");
}


static uint64_t changed_at;


static void replace_handler(void *arg)
{
	changed_at = tmr_jiffies();
	fixture_rename_replace(arg);
}


static void edit_handler(void *arg)
{
	changed_at = tmr_jiffies();
	fixture_write_file(fixture_path, arg);
}


/** Change the file 100 ms into the loop; seen within 1 s? */
static void assert_change_seen(tmr_h *change, const char *src)
{
	ck_assert_int_eq(fixture_start(V1), 0);
	tmr_start(&fixture_action, 100, change, (void *)src);

	ck_assert_msg(fixture_run_until(sees_v2, 3000), "change not seen:\n%s",
		      spy.log);
	ck_assert_uint_lt(tmr_jiffies() - changed_at, 1000);
}


START_TEST(test_watch_rename_replace)
{
	assert_change_seen(replace_handler, V2);

	/* again: the watch must not have followed the replaced inode */
	tmr_start(&fixture_action, 100, replace_handler, (void *)V3);
	ck_assert_msg(fixture_run_until(sees_v3, 3000),
		      "second rename not seen");
	ck_assert_uint_lt(tmr_jiffies() - changed_at, 1000);
}
END_TEST


START_TEST(test_watch_edit_in_place)
{
	assert_change_seen(edit_handler, V2);
}
END_TEST


static bool failed_reload(void)
{
	return policy_last_error() != NULL;
}


START_TEST(test_watch_syntax_error)
{
	ck_assert_int_eq(fixture_start(V1), 0);
	tmr_start(&fixture_action, 50, replace_handler,
		  "return { on_node_up = function( }\n");

	ck_assert(fixture_run_until(failed_reload, 1000));
	fixture_assert_error_has("policy.lua:1:");
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert(spy_has("v1:1"));
}
END_TEST


static void sighup_handler(void *arg)
{
	(void)arg;
	ck_assert_int_eq(raise(SIGHUP), 0);
}


START_TEST(test_sighup)
{
	ck_assert_int_eq(fixture_start("rehome.release('loaded=yes')\n"
				       "return {}\n"), 0);
	ck_assert_uint_eq(spy_count("loaded=yes"), 1);

	tmr_start(&fixture_action, 50, sighup_handler, NULL);
	ck_assert(fixture_run_until(spy_loaded_twice, 1000));
}
END_TEST

START_TEST(test_sighup_no_policy)
{
	ck_assert_int_eq(policy_init(NULL, fixture_libdir, &spy_ops), 0);
	ck_assert_int_eq(policy_init(NULL, fixture_libdir, &spy_ops), EALREADY);

	tmr_start(&fixture_action, 20, sighup_handler, NULL);
	/* and the process is still here */
	ck_assert(!fixture_run_until(fixture_never, 200));
}
END_TEST


static Suite *policy_reload_suite(void)
{
	Suite *s = suite_create("policy_reload");
	TCase *reload = tcase_create("reload");

	tcase_add_checked_fixture(reload, fixture_setup, fixture_teardown);
	tcase_add_test(reload, test_reload);
	tcase_add_test(reload, test_watch_rename_replace);
	tcase_add_test(reload, test_watch_edit_in_place);
	tcase_add_test(reload, test_watch_syntax_error);
	tcase_add_test(reload, test_sighup);
	tcase_add_test(reload, test_sighup_no_policy);
	suite_add_tcase(s, reload);

	return s;
}


int main(void)
{
	return fixture_main(policy_reload_suite());
}
