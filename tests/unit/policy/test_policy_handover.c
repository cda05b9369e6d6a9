/**
 * @file test_policy_handover.c  A policy's state across a reload
 *
 * What on_unload returns reaches the next version's on_load as plain
 * data, types kept (integers, floats, strings, booleans, lists, nested
 * tables); the first load gets nil. State that cannot cross (a function,
 * a cycle, too much, keys that are neither strings nor a list) is refused
 * with a logged error and the new version starts with nil; a failing
 * on_load refuses the reload and the old version keeps running, its state
 * too. rehomed -t (policy_check) runs on_load as well. The fake engine
 * and the loop are in policy_fixture.c.
 */
#include <string.h>
#include <check.h>
#include <re.h>
#include "policy.h"
#include "policy_fixture.h"

/** v1: counts node events; hands over its count and sample values */
static const char V1[] =
	"local rehome = require 'rehome'\n"
	"local n = 0\n"
	"return {\n"
	"  on_load = function(state) rehome.release('v1 got ' .. "
	"tostring(state)) end,\n"
	"  on_node_up = function() n = n + 1; rehome.release('v1:' .. n) end,\n"
	"  on_unload = function()\n"
	"    return {n = n, f = 1.5, s = 'x', yes = true,\n"
	"            list = {3, 'two', false}, nested = {a = {b = 'deep'}}}\n"
	"  end,\n"
	"}\n";

/** v2: reports what it received */
static const char V2[] =
	"local rehome = require 'rehome'\n"
	"local n = 0\n"
	"return {\n"
	"  on_load = function(st)\n"
	"    n = st.n\n"
	"    rehome.release(('v2 got n=%s %s f=%s %s s=%s yes=%s'):format(\n"
	"      st.n, math.type(st.n), st.f, math.type(st.f), st.s,\n"
	"      tostring(st.yes)))\n"
	"    rehome.release(('list %d %s %s %s'):format(#st.list,\n"
	"      st.list[1], st.list[2], tostring(st.list[3])))\n"
	"    rehome.release('nested ' .. st.nested.a.b)\n"
	"  end,\n"
	"  on_node_up = function() n = n + 1; rehome.release('v2:' .. n) end,\n"
	"}\n";


static void reload_ok(const char *src)
{
	char msg[256];

	fixture_write_file(fixture_path, src);
	ck_assert_msg(policy_reload(msg, sizeof(msg)) == 0, "%s", msg);
}


START_TEST(test_state_crosses)
{
	ck_assert_int_eq(fixture_start(V1), 0);
	ck_assert(spy_has("v1 got nil"));
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert(spy_has("v1:2"));

	reload_ok(V2);
	ck_assert_msg(spy_has("v2 got n=2 integer f=1.5 float s=x yes=true"),
		      "%s", spy.log);
	ck_assert(spy_has("list 3 3 two false"));
	ck_assert(spy_has("nested deep"));
	ck_assert_ptr_null(policy_last_error());

	/* the count goes on where v1 left it */
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert_msg(spy_has("v2:3"), "%s", spy.log);
}
END_TEST


/** A v1 whose on_unload returns `what`, then a v2 that reports it */
static void assert_refused(const char *what, const char *error)
{
	char src[512];

	re_snprintf(src, sizeof(src),
		    "local rehome = require 'rehome'\n"
		    "return { on_unload = function()\n"
		    "  %s\n"
		    "end }\n", what);
	ck_assert_int_eq(fixture_start(src), 0);

	reload_ok("local rehome = require 'rehome'\n"
		  "return { on_load = function(st)\n"
		  "  rehome.release('v2 got ' .. tostring(st))\n"
		  "end }\n");
	ck_assert_msg(spy_has("v2 got nil"), "%s", spy.log);
	fixture_assert_error_has("on_unload");
	fixture_assert_error_has(error);
}


START_TEST(test_function_refused)
{
	assert_refused("return {f = print}",
		       "a function cannot cross a reload");
}
END_TEST


START_TEST(test_cycle_refused)
{
	assert_refused("local t = {}; t.t = t; return t", "or a cycle");
}
END_TEST


START_TEST(test_too_big_refused)
{
	assert_refused("local t = {}\n"
		       "for i = 1, 40 do t[i] = ('x'):rep(32768) .. i end\n"
		       "return t", "state larger than");
}
END_TEST


START_TEST(test_keys_refused)
{
	assert_refused("return {[1] = 'a', [3] = 'c'}", "string keys only");
}
END_TEST


START_TEST(test_unload_error)
{
	assert_refused("error('no state today')",
		       "policy.lua:3: no state today");
}
END_TEST


START_TEST(test_load_error_keeps_old)
{
	char msg[256];

	ck_assert_int_eq(fixture_start(V1), 0);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);

	fixture_write_file(fixture_path,
			   "return {\n"
			   "  on_load = function(st) error('bad state') end,\n"
			   "}\n");
	ck_assert_int_eq(policy_reload(msg, sizeof(msg)), EINVAL);
	ck_assert_msg(strstr(msg, "policy.lua:2: bad state"), "%s", msg);
	fixture_assert_error_has("policy.lua:2: bad state");

	/* v1 runs on, with its count */
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert_msg(spy_has("v1:2"), "%s", spy.log);

	/* rehomed -t loads it as a reload does */
	ck_assert_int_eq(policy_check(fixture_path, fixture_libdir, msg,
				      sizeof(msg)), EINVAL);
	ck_assert_msg(strstr(msg, "policy.lua:2: bad state"), "%s", msg);
}
END_TEST


/** The shipped rate limiter: a reload in a burst keeps its budget */
START_TEST(test_ratelimit_budget_kept)
{
	static const char src[] =
		"local rehome = require 'rehome'\n"
		"local ratelimit = require 'ratelimit'\n"
		"local b = ratelimit.new{rate = 0.001, burst = 5}\n"
		"return {\n"
		"  on_load = function(st)\n"
		"    if st then b = ratelimit.new{rate = 0.001, burst = 5,\n"
		"                                 state = st.bucket} end\n"
		"  end,\n"
		"  on_unload = function() return {bucket = b:state()} end,\n"
		"  on_node_up = function()\n"
		"    rehome.release('granted ' .. b:take(2, rehome.now()))\n"
		"  end,\n"
		"}\n";

	ck_assert_int_eq(fixture_start(src), 0);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert(spy_has("granted 2"));

	reload_ok(src);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert_msg(spy_count("granted 2") == 2 && spy_has("granted 1"),
		      "%s", spy.log);
}
END_TEST


static Suite *policy_handover_suite(void)
{
	Suite *s = suite_create("policy_handover");
	TCase *tc = tcase_create("handover");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_add_test(tc, test_state_crosses);
	tcase_add_test(tc, test_function_refused);
	tcase_add_test(tc, test_cycle_refused);
	tcase_add_test(tc, test_too_big_refused);
	tcase_add_test(tc, test_keys_refused);
	tcase_add_test(tc, test_unload_error);
	tcase_add_test(tc, test_load_error_keeps_old);
	tcase_add_test(tc, test_ratelimit_budget_kept);
	suite_add_tcase(s, tc);

	return s;
}


int main(void)
{
	return fixture_main(policy_handover_suite());
}
