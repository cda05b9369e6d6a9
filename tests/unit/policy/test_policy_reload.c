/**
 * @file test_policy_reload.c  The Lua policy host: reloads and the watch
 *
 * A reload replaces the policy only when the new file loads, keeping the
 * old one and its state otherwise; the file is watched (replaced by a
 * rename or edited in place) and loaded once it has settled, so a file
 * saved in two writes never runs half; policy_set_file() moves to
 * another file. SIGHUP is the engine's (engine_reload.c). The fake engine and
 * the loop are in policy_fixture.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include "metrics.h"
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


/* A save in two writes 100 ms apart: the first half alone does not load */
static const char HALF1[] =
	"rehome.release('loaded=v2')\n"
	"return { on_node_up = function()\n";
static const char HALF2[] =
	"  rehome.release('v2') end }\n";
static FILE *saving;


static void second_half_handler(void *arg)
{
	(void)arg;
	ck_assert_int_eq(fputs(HALF2, saving) >= 0, 1);
	ck_assert_int_eq(fclose(saving), 0);
	saving = NULL;
	changed_at = tmr_jiffies();
}


static void first_half_handler(void *arg)
{
	(void)arg;
	saving = fopen(fixture_path, "w");
	ck_assert_ptr_nonnull(saving);
	ck_assert_int_eq(fputs(HALF1, saving) >= 0, 1);
	ck_assert_int_eq(fflush(saving), 0);
	tmr_start(&fixture_action, 100, second_half_handler, NULL);
}


static int metrics_h(struct re_printf *pf, void *arg)
{
	(void)arg;
	return metrics_print(pf);
}


/** Was a failed reload counted? (a later good one clears last_error) */
static bool reload_failed_counted(void)
{
	char *text = NULL;
	bool found;

	ck_assert_int_eq(re_sdprintf(&text, "%H", metrics_h, NULL), 0);
	found = strstr(text, "event=\"reload_failed\"") != NULL;
	mem_deref(text);
	return found;
}


START_TEST(test_watch_settles)
{
	ck_assert_int_eq(fixture_start(V1), 0);
	tmr_start(&fixture_action, 50, first_half_handler, NULL);

	ck_assert_msg(fixture_run_until(sees_v2, 3000), "save not seen:\n%s",
		      spy.log);
	ck_assert_uint_ge(tmr_jiffies() - changed_at, POLICY_SETTLE_MS);

	(void)fixture_run_until(fixture_never, 2 * POLICY_SETTLE_MS);
	ck_assert_uint_eq(spy_count("loaded=v2"), 1);
	ck_assert_msg(!reload_failed_counted(), "the half file was loaded");
}
END_TEST


static void other_edit_handler(void *arg)
{
	char other[160];

	fixture_other_path(other, sizeof(other));
	fixture_write_file(other, arg);
}


START_TEST(test_set_file)
{
	char other[160], msg[256];

	ck_assert_int_eq(fixture_start(V1), 0);
	fixture_other_path(other, sizeof(other));
	fixture_write_file(other, V2);

	/* another file: loaded, and watched instead of the first */
	ck_assert_int_eq(policy_set_file(other, fixture_libdir, msg,
					 sizeof(msg)), 0);
	ck_assert(sees_v2());
	tmr_start(&fixture_action, 50, replace_handler, (void *)V3);
	(void)fixture_run_until(fixture_never, 3 * POLICY_SETTLE_MS);
	memset(&spy, 0, sizeof(spy));
	ck_assert(sees_v2());
	tmr_start(&fixture_action, 50, other_edit_handler, (void *)V3);
	ck_assert_msg(fixture_run_until(sees_v3, 3000), "%s", spy.log);

	/* one that does not load changes nothing */
	fixture_write_file(fixture_path, "return {\n");
	ck_assert_int_eq(policy_set_file(fixture_path, fixture_libdir, msg,
					 sizeof(msg)), EINVAL);
	ck_assert_msg(strstr(msg, "policy.lua:"), "%s", msg);
	memset(&spy, 0, sizeof(spy));
	ck_assert(sees_v3());

	/* the same file again is a reload */
	fixture_write_file(other, V2);
	ck_assert_int_eq(policy_set_file(other, fixture_libdir, msg,
					 sizeof(msg)), 0);
	ck_assert(sees_v2());

	/* none: hooks are no-ops */
	ck_assert_int_eq(policy_set_file(NULL, fixture_libdir, msg,
					 sizeof(msg)), 0);
	memset(&spy, 0, sizeof(spy));
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert_str_eq(spy.log, "");
	ck_assert_int_eq(policy_reload(msg, sizeof(msg)), ENOENT);
}
END_TEST


/* sha256sum of V1 and V2 */
static const char V1_HASH[] =
	"5474626dfc42879539cf9c22664dff86adb3ace93dd65057760b216853d4796c";
static const char V2_HASH[] =
	"5a896ef2e0383af79491a0b264a23cd5a9ba2bb047888c29951729884b3eff9e";

static char heard[POLICY_HASH_SZ + 8];
static unsigned heard_n;


static void loaded_spy(const char *hash, void *arg)
{
	(void)arg;
	str_ncpy(heard, hash, sizeof(heard));
	++heard_n;
}


START_TEST(test_hash)
{
	char msg[256];
	uint64_t at;

	ck_assert_int_eq(fixture_start(V1), 0);
	ck_assert_str_eq(policy_hash(), V1_HASH);
	ck_assert_str_eq(policy_path(), fixture_path);
	at = policy_loaded_at();
	ck_assert_uint_gt(at, 1700000000000ULL);
	heard_n = 0;
	policy_set_loaded_handler(loaded_spy, NULL);

	/* a file that does not load changes nothing, and tells nobody */
	fixture_write_file(fixture_path, "return {\n");
	ck_assert_int_eq(policy_reload(msg, sizeof(msg)), EINVAL);
	ck_assert_str_eq(policy_hash(), V1_HASH);
	ck_assert_uint_eq(policy_loaded_at(), at);
	ck_assert_uint_eq(heard_n, 0);

	fixture_write_file(fixture_path, V2);
	ck_assert_int_eq(policy_reload(msg, sizeof(msg)), 0);
	ck_assert_str_eq(policy_hash(), V2_HASH);
	ck_assert_uint_ge(policy_loaded_at(), at);
	ck_assert_uint_eq(heard_n, 1);
	ck_assert_str_eq(heard, V2_HASH);

	/* no policy any more: no hash */
	ck_assert_int_eq(policy_set_file(NULL, fixture_libdir, msg,
					 sizeof(msg)), 0);
	ck_assert_str_eq(policy_hash(), "");
	ck_assert_uint_eq(policy_loaded_at(), 0);
	ck_assert_uint_eq(heard_n, 2);
	ck_assert_str_eq(heard, "");
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
	tcase_add_test(reload, test_watch_settles);
	tcase_add_test(reload, test_set_file);
	tcase_add_test(reload, test_hash);
	suite_add_tcase(s, reload);

	return s;
}


int main(void)
{
	return fixture_main(policy_reload_suite());
}
