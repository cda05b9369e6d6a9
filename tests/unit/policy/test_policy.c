/**
 * @file test_policy.c  The Lua policy host: hooks and the rehome module
 *
 * Hooks get the documented arguments and their decisions are checked;
 * the rehome module reads and acts through the engine's ops, and reports
 * back through done functions and timers. The shipped policies load.
 * The fake engine and the loop are in policy_fixture.c.
 */
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include "policy.h"
#include "policy_fixture.h"

/* ---- hooks get the documented arguments ---- */

START_TEST(test_invite_fields)
{
	static const char *const want[] = {
		"method=INVITE",
		"uri=sip:bob@example.org:5070",
		"uri_user=bob",
		"uri_host=example.org",
		"from=sip:alice@a.example.com",
		"from_user=alice",
		"from_host=a.example.com",
		"from_tag=ft1",
		"to=sip:bob@example.org",
		"to_user=bob",
		"to_host=example.org",
		"call_id=cid-42@host",
		"source=192.0.2.7:5062",
		"source_ip=192.0.2.7",
		"source_port=5062",
		"transport=UDP",
		"listener=public",
		"h.x-tenant=tenant-b",
		"h.via=SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1, "
		"SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK2",
	};
	struct policy_decision d;
	char src[2048];

	re_snprintf(src, sizeof(src), "%s"
		"local keys = {'method', 'uri', 'uri_user', 'uri_host',\n"
		"  'from', 'from_user', 'from_host', 'from_tag', 'to',\n"
		"  'to_user', 'to_host', 'call_id', 'source', 'source_ip',\n"
		"  'source_port', 'transport', 'listener'}\n"
		"return { on_initial_invite = function(req)\n"
		"  for _, k in ipairs(keys) do spy(k, req[k]) end\n"
		"  spy('h.x-tenant', req.headers['x-tenant'])\n"
		"  spy('h.via', req.headers.via)\n"
		"  return {shtag = 't-' .. req.from_user,\n"
		"          target = 'sip:bob@192.0.2.9:5080'}\n"
		"end }\n", spy_lua);
	ck_assert_int_eq(fixture_start(src), 0);

	ck_assert_int_eq(fixture_invite_decide(&d), 0);
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		ck_assert_msg(spy_has(want[i]), "missing %s in:\n%s", want[i],
			      spy.log);

	ck_assert_str_eq(d.shtag, "t-alice");
	ck_assert_str_eq(d.target, "sip:bob@192.0.2.9:5080");
	ck_assert_int_eq(d.scode, 0);
}
END_TEST


START_TEST(test_invite_reject)
{
	struct policy_decision d;

	ck_assert_int_eq(fixture_start(
		"local n = 0\n"
		"return { on_initial_invite = function(req)\n"
		"  n = n + 1\n"
		"  if n == 1 then return {reject = 486, reason = 'Busy Here'} "
		"end\n"
		"  return {reject = 403}\n"
		"end }\n"), 0);

	ck_assert_int_eq(fixture_invite_decide(&d), 0);
	ck_assert_int_eq(d.scode, 486);
	ck_assert_str_eq(d.reason, "Busy Here");

	ck_assert_int_eq(fixture_invite_decide(&d), 0);
	ck_assert_int_eq(d.scode, 403);
	ck_assert_str_eq(d.reason, "Rejected by policy");
}
END_TEST


START_TEST(test_invite_bad_decision)
{
	static const char *const bad[] = {
		"{shatg = 'x'}",             "unknown field 'shatg'",
		"{target = 'http://x/'}",    "is not a SIP URI",
		"{reject = 200}",            "from 400 to 699",
		"{reject = 500, reason = 'a\\r\\nX-Evil: 1'}",
		"forbidden character",
		"{shtag = string.rep('t', 64)}", "1 to 63 characters",
		"'default'",                 "must return a table or nil",
	};
	struct policy_decision d;
	char src[256];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i += 2) {
		re_snprintf(src, sizeof(src),
			    "return { on_initial_invite = function() "
			    "return %s end }\n", bad[i]);
		ck_assert_int_eq(fixture_start(src), 0);

		ck_assert_int_eq(fixture_invite_decide(&d), EINVAL);
		ck_assert_str_eq(d.shtag, "");
		ck_assert_str_eq(d.target, "");
		ck_assert_int_eq(d.scode, 0);
		fixture_assert_error_has(bad[i + 1]);
		policy_close();
	}
}
END_TEST


START_TEST(test_invite_no_hook)
{
	struct policy_decision d = {.scode = 1};

	ck_assert_int_eq(fixture_start("return { on_tick = function() end }\n"),
			 0);
	ck_assert_int_eq(fixture_invite_decide(&d), 0);
	ck_assert_int_eq(d.scode, 0);
	ck_assert_str_eq(d.shtag, "");
}
END_TEST


START_TEST(test_no_policy)
{
	struct policy_decision d = {.scode = 1};
	char msg[128];

	ck_assert_int_eq(policy_init(NULL, fixture_libdir, &spy_ops), 0);
	ck_assert_int_eq(fixture_invite_decide(&d), 0);
	ck_assert_int_eq(d.scode, 0);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DOWN), 0);
	ck_assert_int_eq(policy_reload(msg, sizeof(msg)), ENOENT);
	ck_assert_str_eq(msg, "no policy configured");
}
END_TEST


START_TEST(test_node_events)
{
	char src[512];

	re_snprintf(src, sizeof(src), "%s"
		"return {\n"
		"  on_node_up = function(n) spy('up', n) end,\n"
		"  on_node_down = function(n) spy('down', n) end,\n"
		"  on_node_draining = function(n) spy('draining', n) end,\n"
		"}\n", spy_lua);
	ck_assert_int_eq(fixture_start(src), 0);

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DOWN), 0);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert_int_eq(policy_node_event("n3", POLICY_NODE_DRAINING), 0);
	ck_assert_int_eq(policy_node_event("n3", 42), EINVAL);

	ck_assert(spy_has("down=n2"));
	ck_assert(spy_has("up=n2"));
	ck_assert(spy_has("draining=n3"));
}
END_TEST


START_TEST(test_rehome_done)
{
	struct odict *res, *fails, *f1;
	char src[512];

	re_snprintf(src, sizeof(src), "%s"
		"return { on_rehome_done = function(r)\n"
		"  spy('done', r.tag .. '/' .. tostring(r.ok) .. '/' .. "
		"r.moved .. '/' .. r.failures[1].did .. '/' .. "
		"r.failures[1].code .. '/' .. tostring(r.none))\n"
		"end }\n", spy_lua);
	ck_assert_int_eq(fixture_start(src), 0);

	ck_assert_int_eq(odict_alloc(&res, 8), 0);
	ck_assert_int_eq(odict_alloc(&fails, 4), 0);
	ck_assert_int_eq(odict_alloc(&f1, 4), 0);
	odict_entry_add(f1, "did", ODICT_STRING, "d9");
	odict_entry_add(f1, "code", ODICT_INT, (int64_t)408);
	spy_add_obj(fails, "0", ODICT_OBJECT, f1);
	odict_entry_add(res, "tag", ODICT_STRING, "t1");
	odict_entry_add(res, "ok", ODICT_BOOL, true);
	odict_entry_add(res, "moved", ODICT_INT, (int64_t)10);
	odict_entry_add(res, "none", ODICT_NULL);
	spy_add_obj(res, "failures", ODICT_ARRAY, fails);

	ck_assert_int_eq(policy_rehome_done(res), 0);
	mem_deref(res);
	ck_assert_msg(spy_has("done=t1/true/10/d9/408/nil"), "%s", spy.log);
}
END_TEST


static bool ticked(void)
{
	return spy_count("tick=") > 0;
}


START_TEST(test_tick)
{
	char src[512];
	uint64_t t0;

	re_snprintf(src, sizeof(src), "%s"
		"return { on_tick = function(s)\n"
		"  spy('tick', s.node .. '/' .. s.cps .. '/' .. s.calls .. "
		"'/' .. s.nodes.n1.calls .. '/' .. s.nodes.n1.state)\n"
		"end }\n", spy_lua);
	ck_assert_int_eq(fixture_start(src), 0);

	t0 = tmr_jiffies();
	ck_assert(fixture_run_until(ticked, 2000));
	ck_assert_uint_ge(tmr_jiffies() - t0, POLICY_TICK_MS - 50);
	ck_assert_msg(spy_has("tick=n1/2.5/7/7/up"), "%s", spy.log);
}
END_TEST

/* ---- the rehome module ---- */

START_TEST(test_api)
{
	struct odict *res;
	char src[4096];

	re_snprintf(src, sizeof(src), "%s"
		"return { on_node_up = function()\n"
		"  spy('id', rehome.node_id())\n"
		"  local ns = rehome.nodes()\n"
		"  spy('nodes', #ns .. ':' .. ns[1].id .. ':' .. ns[2].state"
		" .. ':' .. tostring(ns[1].self) .. ':' .. ns[1].calls)\n"
		"  local ts = rehome.shtags()\n"
		"  spy('tags', #ts .. ':' .. ts[1].name .. ':' .. ts[1].active"
		" .. ':' .. ts[1].epoch .. ':' .. tostring(ts[1].mine))\n"
		"  local ds = rehome.dialogs{tag = 't1', limit = 5}\n"
		"  spy('dialogs', #ds .. ':' .. ds[1].did .. ':' .. "
		"ds[1].call_id)\n"
		"  spy('take', rehome.take('t1', function(ok, r)\n"
		"    spy('take_done', tostring(ok) .. ':' .. r.epoch) end))\n"
		"  spy('rehome', rehome.rehome{tag = 't1', mode = 'caller',\n"
		"    body = 'none', rate = 50, done = function(ok, e)\n"
		"      spy('rehome_done', tostring(ok) .. ':' .. e) end})\n"
		"  spy('move', rehome.move{tag = 't1', to = 'n2', percent = 25})"
		"\n"
		"  spy('move_busy', select(2, rehome.move{tag = 't1', "
		"to = 'n2', count = 1}))\n"
		"  spy('move_bad', pcall(rehome.move, {tag = 't1', to = 'n2'}))"
		"\n"
		"  spy('rehome_bad', pcall(rehome.rehome, {mode = 'x'}))\n"
		"  spy('now', math.type(rehome.now()))\n"
		"  rehome.log('info', 'hello from the test policy')\n"
		"  spy('log_bad', pcall(rehome.log, 'loud', 'x'))\n"
		"end }\n", spy_lua);
	ck_assert_int_eq(fixture_start(src), 0);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);

	ck_assert_msg(spy_has("id=n1"), "%s", spy.log);
	ck_assert(spy_has("nodes=2:n1:down:true:7"));
	ck_assert(spy_has("tags=1:t1:n2:3:nil"));
	ck_assert(spy_has("dialogs=1:d1:c1"));
	ck_assert_str_eq(spy.dialogs_tag, "t1");
	ck_assert_uint_eq(spy.dialogs_limit, 5);
	ck_assert(spy_has("op:take:t1"));
	ck_assert(spy_has("take=true"));
	ck_assert(spy_has("op:rehome:t1:caller:none:50"));
	ck_assert(spy_has("rehome=true"));
	ck_assert(spy_has("op:move:t1:n2:0:25"));
	ck_assert(spy_has("move=true"));
	ck_assert(spy_has("move_busy=Device or resource busy"));
	ck_assert(spy_has("move_bad=false"));
	ck_assert(spy_has("rehome_bad=false"));
	ck_assert(spy_has("now=integer"));
	ck_assert(spy_has("log_bad=false"));

	/* the engine reports: done functions run with the result */
	ck_assert_int_eq(odict_alloc(&res, 4), 0);
	odict_entry_add(res, "epoch", ODICT_INT, (int64_t)4);
	spy.take.h(0, res, spy.take.arg);
	mem_deref(res);
	ck_assert_msg(spy_has("take_done=true:4"), "%s", spy.log);

	spy.rehome.h(ETIMEDOUT, NULL, spy.rehome.arg);
	ck_assert_msg(spy_has("rehome_done=false:Connection timed out"), "%s",
		      spy.log);

	/* a second report, or one for an action without done: ignored */
	spy.rehome.h(0, NULL, spy.rehome.arg);
	spy.move.h(0, NULL, spy.move.arg);
	ck_assert_uint_eq(spy_count("rehome_done="), 1);
}
END_TEST


START_TEST(test_api_not_supported)
{
	const struct policy_ops few = {.release = spy_release};
	char src[512];

	re_snprintf(src, sizeof(src), "%s"
		"return { on_node_up = function()\n"
		"  spy('take', select(2, rehome.take('t1')))\n"
		"  spy('nodes', select(2, rehome.nodes()))\n"
		"  spy('id', rehome.node_id())\n"
		"end }\n", spy_lua);
	fixture_write_file(fixture_path, src);
	ck_assert_int_eq(policy_init(fixture_path, fixture_libdir, &few), 0);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);

	ck_assert_msg(spy_has("take=not supported"), "%s", spy.log);
	ck_assert(spy_has("nodes=not supported"));
	ck_assert(spy_has("id="));
}
END_TEST


START_TEST(test_done_after_reload)
{
	char msg[256], src[512];

	re_snprintf(src, sizeof(src), "%s"
		"return { on_node_up = function()\n"
		"  rehome.take('t1', function() spy('stale', 'called') end)\n"
		"end }\n", spy_lua);
	ck_assert_int_eq(fixture_start(src), 0);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert_ptr_nonnull(spy.take.h);

	ck_assert_int_eq(policy_reload(msg, sizeof(msg)), 0);
	spy.take.h(0, NULL, spy.take.arg);
	ck_assert(!spy_has("stale=called"));

	policy_close();
	spy.take.h(0, NULL, spy.take.arg);
	ck_assert(!spy_has("stale=called"));
}
END_TEST


static bool after_fired(void)
{
	return spy_has("after=fired");
}


START_TEST(test_after)
{
	char src[1024];

	re_snprintf(src, sizeof(src), "%s"
		"return { on_node_up = function()\n"
		"  rehome.after(30, function() spy('after', 'fired') end)\n"
		"  spy('many', pcall(function()\n"
		"    for i = 1, 2000 do rehome.after(60000, print) end end))\n"
		"end }\n", spy_lua);
	ck_assert_int_eq(fixture_start(src), 0);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert(spy_has("many=false"));
	ck_assert(!after_fired());

	ck_assert(fixture_run_until(after_fired, 1000));
}
END_TEST

/* ---- the shipped policies load in the sandbox ---- */

static int start_shipped(const char *name)
{
	char file[600];

	re_snprintf(file, sizeof(file), "%s/../policies/%s.lua", fixture_libdir,
		    name);
	return policy_init(file, fixture_libdir, &spy_ops);
}


START_TEST(test_shipped_policies)
{
	static const char *const names[] = {
		"failover", "active_active", "rebalance", "drain", "partition",
	};
	struct policy_decision d;

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		ck_assert_msg(start_shipped(names[i]) == 0, "%s", names[i]);
		ck_assert_int_eq(fixture_invite_decide(&d), 0);
		ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DOWN), 0);
		policy_close();
	}

	/* failover: n1 follows the dead n2, so it re-homes n2's tag */
	ck_assert_msg(spy_has("op:rehome:t1:challenge:-:0"), "%s", spy.log);

	ck_assert_int_eq(start_shipped("partition"), 0);
	ck_assert_int_eq(fixture_invite_decide(&d), 0);
	ck_assert_str_eq(d.shtag, "tenant-b");
	policy_close();

	ck_assert_int_eq(start_shipped("active_active"), 0);
	ck_assert_int_eq(fixture_invite_decide(&d), 0);
	ck_assert_str_eq(d.shtag, "n1");
}
END_TEST


static Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *hooks = tcase_create("hooks");
	TCase *api = tcase_create("api");

	tcase_add_checked_fixture(hooks, fixture_setup, fixture_teardown);
	tcase_add_test(hooks, test_invite_fields);
	tcase_add_test(hooks, test_invite_reject);
	tcase_add_test(hooks, test_invite_bad_decision);
	tcase_add_test(hooks, test_invite_no_hook);
	tcase_add_test(hooks, test_no_policy);
	tcase_add_test(hooks, test_node_events);
	tcase_add_test(hooks, test_rehome_done);
	tcase_add_test(hooks, test_tick);
	tcase_add_test(hooks, test_shipped_policies);
	suite_add_tcase(s, hooks);

	tcase_add_checked_fixture(api, fixture_setup, fixture_teardown);
	tcase_add_test(api, test_api);
	tcase_add_test(api, test_api_not_supported);
	tcase_add_test(api, test_done_after_reload);
	tcase_add_test(api, test_after);
	suite_add_tcase(s, api);

	return s;
}


int main(void)
{
	return fixture_main(policy_suite());
}
