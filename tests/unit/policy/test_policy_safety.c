/**
 * @file test_policy_safety.c  The Lua policy host: budgets, memory, sandbox
 *
 * A policy cannot stall or starve the engine: runaway loops and patterns
 * hit the instruction or CPU time budget, hoarding hits the memory limit,
 * errors name the file and line, overruns hold a hook back, and the
 * sandbox leaves out what could reach the system. The fake engine and
 * the loop are in policy_fixture.c.
 */
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include "policy.h"
#include "policy_fixture.h"

/* ---- runaway, errors, memory ---- */

START_TEST(test_runaway_loop)
{
	struct policy_decision d;
	char src[1024];
	double t0;

	re_snprintf(src, sizeof(src), "%s"
		"return {\n"
		"  on_initial_invite = function()\n"
		"    while true do end\n"
		"  end,\n"
		"  on_node_down = function()\n"
		"    while true do pcall(function() while true do end end) end\n"
		"  end,\n"
		"  on_node_up = function(n) spy('up', n) end,\n"
		"}\n", spy_lua);
	ck_assert_int_eq(fixture_start(src), 0);

	t0 = fixture_cpu_ms();
	ck_assert_int_eq(fixture_invite_decide(&d), ETIMEDOUT);
	ck_assert_double_lt(fixture_cpu_ms() - t0, 1000);
	ck_assert_str_eq(d.shtag, "");
	fixture_assert_error_has("policy.lua:5: instruction budget");
	fixture_assert_error_has("on_initial_invite");

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DOWN), ETIMEDOUT);

	/* the state is still usable */
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert(spy_has("up=n2"));
}
END_TEST


START_TEST(test_pattern_budget)
{
	struct policy_decision d;
	char src[1024];
	double t0;

	re_snprintf(src, sizeof(src), "%s"
		"local s = ('a'):rep(300)\n"
		"return {\n"
		"  on_initial_invite = function()\n"
		"    return {shtag = s:find('a*a*a*b') and 'x' or 'y'}\n"
		"  end,\n"
		"  on_node_down = function()\n"
		"    spy('swallowed', tostring(pcall(string.gsub, s,"
		" 'a*a*a*b', '')))\n"
		"  end,\n"
		"  on_node_up = function(n) spy('up', n) end,\n"
		"}\n", spy_lua);
	ck_assert_int_eq(fixture_start(src), 0);

	/* Lua's own matcher would take seconds */
	t0 = fixture_cpu_ms();
	ck_assert_int_eq(fixture_invite_decide(&d), ETIMEDOUT);
	ck_assert_double_lt(fixture_cpu_ms() - t0, 500);
	ck_assert_str_eq(d.shtag, "");
	fixture_assert_error_has("policy.lua:6: instruction budget of "
				 "1000000 exceeded");

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DOWN), ETIMEDOUT);
	ck_assert(!spy_has("swallowed=false"));

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert(spy_has("up=n2"));
}
END_TEST


START_TEST(test_cpu_budget)
{
	char src[1024];
	double t0;

	/* a few instructions, each a pass over 4 MiB in C: the instruction
	   count alone would first look after some seconds */
	re_snprintf(src, sizeof(src), "%s"
		"return {\n"
		"  on_node_down = function()\n"
		"    local s = string.rep('x', 1 << 22)\n"
		"    while true do pcall(string.upper, s) end\n"
		"  end,\n"
		"  on_node_up = function(n) spy('up', n) end,\n"
		"}\n", spy_lua);
	ck_assert_int_eq(fixture_start(src), 0);

	t0 = fixture_cpu_ms();
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DOWN), ETIMEDOUT);
	ck_assert_double_lt(fixture_cpu_ms() - t0, 1000);
	fixture_assert_error_has("policy.lua:6: CPU time budget of 100 ms "
				 "exceeded");

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert(spy_has("up=n2"));
}
END_TEST


START_TEST(test_runaway_at_load)
{
	ck_assert_int_eq(fixture_start("while true do end\n"), ETIMEDOUT);
}
END_TEST


START_TEST(test_error_file_line)
{
	ck_assert_int_eq(fixture_start(
		"return {\n"
		"  on_node_down = function()\n"
		"    error('boom')\n"
		"  end,\n"
		"  on_node_up = function()\n"
		"    local t = nil\n"
		"    return t.field\n"
		"  end,\n"
		"  on_node_draining = function() error({}) end,\n"
		"}\n"), 0);

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DOWN), EINVAL);
	fixture_assert_error_has("policy.lua:3: boom");

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), EINVAL);
	fixture_assert_error_has("policy.lua:7: attempt to index");

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DRAINING),
			 EINVAL);
	fixture_assert_error_has("error object is a table value");
}
END_TEST


/** Filling the memory limit may take longer than the CPU time budget:
 * either stops a hoarding hook */
static void assert_overrun(int err)
{
	ck_assert_msg(err == ENOMEM || err == ETIMEDOUT, "error %d", err);
	if (err == ENOMEM)
		fixture_assert_error_has("not enough memory");
	else
		fixture_assert_error_has("CPU time budget of 100 ms exceeded");
}


START_TEST(test_memory_bomb)
{
	char src[1024];

	re_snprintf(src, sizeof(src), "%s"
		"return {\n"
		"  on_node_down = function()\n"
		"    local s = string.rep('x', 1 << 30)\n"
		"    spy('len', #s)\n"
		"  end,\n"
		"  on_node_draining = function()\n"
		"    local t = {}\n"
		"    for i = 1, 1e9 do t[i] = string.rep('y', 1 << 20) .. i end\n"
		"  end,\n"
		"  on_node_up = function(n) spy('up', n) end,\n"
		"}\n", spy_lua);
	ck_assert_int_eq(fixture_start(src), 0);

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DOWN), ENOMEM);
	fixture_assert_error_has("not enough memory");
	assert_overrun(policy_node_event("n2", POLICY_NODE_DRAINING));

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert(spy_has("up=n2"));
	ck_assert(!spy_has("len=1073741824"));
}
END_TEST

START_TEST(test_memory_held_reloads)
{
	char src[1024];

	re_snprintf(src, sizeof(src), "%s"
		"spy('loaded', 'yes')\n"
		"local keep = {}\n"
		"local function hoard()\n"
		"  while true do keep[#keep + 1] = string.rep('z', 1 << 20) .."
		" #keep end\n"
		"end\n"
		"return {\n"
		"  on_node_down = function()\n"
		"    for i = 1, 30 do rehome.after(0, hoard) end\n"
		"    hoard()\n"
		"  end,\n"
		"  on_node_up = function(n) spy('up', n .. #keep) end,\n"
		"}\n", spy_lua);
	ck_assert_int_eq(fixture_start(src), 0);

	/* a call may run out of CPU time long before it fills the state
	   (fresh pages are slow, the more under a sanitizer): the policy
	   hoards on through callbacks, each a call of its own, until an
	   overrun finds the state more than half full */
	assert_overrun(policy_node_event("n2", POLICY_NODE_DOWN));
	ck_assert(fixture_run_until(spy_loaded_twice, 10000));

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert_msg(spy_has("up=n20"), "%s", spy.log);
}
END_TEST

START_TEST(test_overrun_held_back)
{
	struct policy_decision d;
	char src[1024], msg[256];

	re_snprintf(src, sizeof(src), "%s"
		"return {\n"
		"  on_initial_invite = function()\n"
		"    spy('run', 'invite')\n"
		"    while true do end\n"
		"  end,\n"
		"  on_node_down = function() error('boom') end,\n"
		"}\n", spy_lua);
	ck_assert_int_eq(fixture_start(src), 0);

	/* an overrun holds the hook back: the default, without running it */
	ck_assert_int_eq(fixture_invite_decide(&d), ETIMEDOUT);
	ck_assert_int_eq(fixture_invite_decide(&d), EAGAIN);
	ck_assert_str_eq(d.shtag, "");
	ck_assert_uint_eq(spy_count("run=invite"), 1);

	/* for a second; then it runs again, and the next hold is longer */
	ck_assert(!fixture_run_until(fixture_never, 1100));
	ck_assert_int_eq(fixture_invite_decide(&d), ETIMEDOUT);
	ck_assert(!fixture_run_until(fixture_never, 1100));
	ck_assert_int_eq(fixture_invite_decide(&d), EAGAIN);
	ck_assert_uint_eq(spy_count("run=invite"), 2);

	/* a plain error holds nothing back */
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DOWN), EINVAL);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DOWN), EINVAL);

	/* a reload may bring a fixed file: the hook runs at once */
	ck_assert_int_eq(policy_reload(msg, sizeof(msg)), 0);
	ck_assert_int_eq(fixture_invite_decide(&d), ETIMEDOUT);
	ck_assert_uint_eq(spy_count("run=invite"), 3);
}
END_TEST

/* ---- sandbox ---- */

START_TEST(test_sandbox)
{
	static const char *const want[] = {
		"io=nil", "os.execute=nil", "os.getenv=nil", "os.time=function",
		"load=nil", "dofile=nil", "loadfile=nil", "debug=nil",
		"package=nil", "collectgarbage=nil", "coroutine=nil",
		"req_io=false", "req_c=false", "req_path=false",
		"req_lib=function", "req_rehome=true", "req_string=true",
		"gc=false", "mt=1", "G=true",
	};
	char src[4096];

	re_snprintf(src, sizeof(src), "%s"
		"return { on_node_up = function()\n"
		"  spy('io', type(io)); spy('os.execute', type(os.execute))\n"
		"  spy('os.getenv', type(os.getenv))\n"
		"  spy('os.time', type(os.time)); spy('load', type(load))\n"
		"  spy('dofile', type(dofile)); spy('loadfile', type(loadfile))\n"
		"  spy('debug', type(debug)); spy('package', type(package))\n"
		"  spy('collectgarbage', type(collectgarbage))\n"
		"  spy('coroutine', type(coroutine))\n"
		"  spy('req_io', pcall(require, 'io'))\n"
		"  local ok, e = pcall(require, 'socket.core')\n"
		"  spy('req_c', ok); spy('req_c_msg', e)\n"
		"  spy('req_path', pcall(require, '../../etc/passwd'))\n"
		"  spy('req_lib', type(require('hashring').new))\n"
		"  spy('req_rehome', require('rehome') == rehome)\n"
		"  spy('req_string', require('string') == string)\n"
		"  spy('gc', pcall(setmetatable, {}, {__gc = print}))\n"
		"  spy('mt', setmetatable({}, {__index = {a = 1}}).a)\n"
		"  spy('G', _G.rehome == rehome)\n"
		"end }\n", spy_lua);
	ck_assert_int_eq(fixture_start(src), 0);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);

	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		ck_assert_msg(spy_has(want[i]), "missing %s in:\n%s", want[i],
			      spy.log);
	ck_assert_msg(strstr(spy.log, "req_c_msg=") &&
		      strstr(spy.log, "module 'socket.core' not found"), "%s",
		      spy.log);
}
END_TEST


START_TEST(test_binary_refused)
{
	char msg[256];

	ck_assert_int_eq(fixture_start("\x1bLua\x54\x00"), EINVAL);
	ck_assert_int_eq(fixture_start("return 42\n"), EINVAL);
	ck_assert_int_eq(fixture_start("return { on_node_dwon = print }\n"),
			 EINVAL);
	ck_assert_int_eq(fixture_start("return { on_tick = 1 }\n"), EINVAL);

	fixture_write_file(fixture_path, "return { on_node_dwon = print }\n");
	ck_assert_int_eq(policy_init(NULL, fixture_libdir, &spy_ops), 0);
	ck_assert_int_eq(policy_reload(msg, sizeof(msg)), ENOENT);
}
END_TEST


static Suite *policy_safety_suite(void)
{
	Suite *s = suite_create("policy_safety");
	TCase *safety = tcase_create("safety");

	tcase_add_checked_fixture(safety, fixture_setup, fixture_teardown);
	tcase_add_test(safety, test_runaway_loop);
	tcase_add_test(safety, test_pattern_budget);
	tcase_add_test(safety, test_cpu_budget);
	tcase_add_test(safety, test_runaway_at_load);
	tcase_add_test(safety, test_error_file_line);
	tcase_add_test(safety, test_memory_bomb);
	tcase_add_test(safety, test_memory_held_reloads);
	tcase_add_test(safety, test_overrun_held_back);
	tcase_add_test(safety, test_sandbox);
	tcase_add_test(safety, test_binary_refused);
	suite_add_tcase(s, safety);

	return s;
}


int main(void)
{
	return fixture_main(policy_safety_suite());
}
