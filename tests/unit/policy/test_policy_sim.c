/**
 * @file test_policy_sim.c  Dry run of a policy (policy_simulate)
 *
 * A candidate, loaded beside the running policy on the fake engine, is
 * fed one event: its actions come back as a report, each with the dialogs
 * it would touch, and none reaches the engine (the spy log stays empty);
 * the event's node is shown down or up in nodes() and stats; an INVITE's
 * decision is reported; a load error, an error or a budget overrun in the
 * hook are reported, FILE:LINE included; the running policy, its state
 * included, is not touched. The fake engine is in policy_fixture.c.
 */
#include <string.h>
#include <check.h>
#include <re.h>
#include "policy.h"
#include "policy_fixture.h"

/** The running policy: counts node events through the engine */
static const char RUNNING[] =
	"local rehome = require 'rehome'\n"
	"local n = 0\n"
	"return { on_node_down = function(node)\n"
	"  n = n + 1; rehome.release('running:' .. n)\n"
	"end }\n";

static char report_json[8192];


static void candidate_write(char *path, size_t sz, const char *src)
{
	fixture_other_path(path, sz);
	fixture_write_file(path, src);
}


/** Simulate `req`; the report as JSON in report_json; the error code */
static int simulate(const struct policy_sim_req *req, char *msg, size_t sz)
{
	struct odict *od = NULL;
	int err = policy_simulate(&od, req, msg, sz);

	report_json[0] = '\0';
	if (!err)
		re_snprintf(report_json, sizeof(report_json), "%H",
			    json_encode_odict, od);
	mem_deref(od);
	return err;
}


static void assert_report_has(const char *what)
{
	ck_assert_msg(strstr(report_json, what), "'%s' not in %s", what,
		      report_json);
}


START_TEST(test_actions_recorded)
{
	struct policy_sim_req req = {.event = POLICY_SIM_NODE_DOWN,
				     .node = "n1"};
	char path[160], msg[256];

	candidate_write(path, sizeof(path),
		"local rehome = require 'rehome'\n"
		"return { on_node_down = function(node)\n"
		"  for _, n in ipairs(rehome.nodes()) do\n"
		"    rehome.log('info', n.id .. ' ' .. n.state)\n"
		"  end\n"
		"  assert(rehome.take('t1', function() error('run') end))\n"
		"  assert(rehome.release('t1'))\n"
		"  assert(rehome.rehome{tag = 't1', mode = 'caller', rate = 5})\n"
		"  assert(rehome.move{tag = 't1', to = 'n2', count = 3})\n"
		"  rehome.after(0, function() rehome.take('late') end)\n"
		"end }\n");
	ck_assert_int_eq(fixture_start(RUNNING), 0);
	req.file = path;

	ck_assert_msg(simulate(&req, msg, sizeof(msg)) == 0, "%s", msg);
	assert_report_has("\"event\":\"node_down\",\"node\":\"n1\","
			  "\"hook\":\"on_node_down\",\"called\":true");
	/* one dialog of t1 (fake_dialogs), not confirmed, owner unknown */
	assert_report_has("\"actions\":["
		"{\"action\":\"take\",\"tag\":\"t1\",\"dialogs\":1},"
		"{\"action\":\"release\",\"tag\":\"t1\",\"dialogs\":0},"
		"{\"action\":\"rehome\",\"tag\":\"t1\",\"mode\":\"caller\","
		"\"rate\":5,\"dialogs\":0},"
		"{\"action\":\"move\",\"tag\":\"t1\",\"to\":\"n2\",\"count\":3,"
		"\"dialogs\":0}]");
	/* n1, up in the engine's view, is shown down; n2 as it is */
	assert_report_has("{\"level\":\"info\",\"msg\":\"n1 down\"},"
			  "{\"level\":\"info\",\"msg\":\"n2 down\"}");
	ck_assert_str_eq(spy.dialogs_tag, "t1");

	/* nothing reached the engine, even once the loop runs */
	(void)fixture_run_until(fixture_never, 100);
	ck_assert_msg(spy.log[0] == '\0', "%s", spy.log);
	ck_assert_ptr_null(policy_last_error());
}
END_TEST


START_TEST(test_running_untouched)
{
	struct policy_sim_req req = {.event = POLICY_SIM_NODE_DOWN,
				     .node = "n2"};
	char msg[256];

	ck_assert_int_eq(fixture_start(RUNNING), 0);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DOWN), 0);
	ck_assert(spy_has("running:1"));

	/* the running file, in a state of its own: release is recorded */
	ck_assert_msg(simulate(&req, msg, sizeof(msg)) == 0, "%s", msg);
	assert_report_has("{\"action\":\"release\",\"tag\":\"running:1\"");
	ck_assert_uint_eq(spy_count("running:"), 1);

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DOWN), 0);
	ck_assert_msg(spy_has("running:2"), "%s", spy.log);
}
END_TEST


START_TEST(test_node_shown_up)
{
	struct policy_sim_req req = {.event = POLICY_SIM_NODE_UP,
				     .node = "n9"};
	char path[160], msg[256];

	candidate_write(path, sizeof(path),
		"local rehome = require 'rehome'\n"
		"return { on_node_up = function(node)\n"
		"  local list = rehome.nodes()\n"
		"  local last = list[#list]\n"
		"  rehome.log('warn', #list .. ' ' .. last.id .. ' ' ..\n"
		"             last.state .. ' ' .. last.calls)\n"
		"end }\n");
	ck_assert_int_eq(fixture_start(RUNNING), 0);
	req.file = path;

	ck_assert_msg(simulate(&req, msg, sizeof(msg)) == 0, "%s", msg);
	assert_report_has("\"actions\":[]");
	assert_report_has("{\"level\":\"warn\",\"msg\":\"3 n9 up 0\"}");
}
END_TEST


START_TEST(test_tick)
{
	struct policy_sim_req req = {.event = POLICY_SIM_TICK};
	char path[160], msg[256];

	candidate_write(path, sizeof(path),
		"local rehome = require 'rehome'\n"
		"return { on_tick = function(stats)\n"
		"  rehome.move{tag = 't1', to = 'n2', percent = 50}\n"
		"  print('cps', stats.cps, stats.nodes.n1.state)\n"
		"end }\n");
	ck_assert_int_eq(fixture_start(RUNNING), 0);
	req.file = path;

	ck_assert_msg(simulate(&req, msg, sizeof(msg)) == 0, "%s", msg);
	assert_report_has("\"hook\":\"on_tick\",\"called\":true");
	assert_report_has("\"percent\":50");
	assert_report_has("\"msg\":\"cps\\t2.5\\tup\"");
}
END_TEST


START_TEST(test_invite)
{
	struct policy_sim_req req = {.event = POLICY_SIM_INVITE,
				     .from = "sip:alice@acme.example",
				     .to = "\"Bob\" <sip:bob@example.org>"};
	char path[160], msg[256];

	candidate_write(path, sizeof(path),
		"return { on_initial_invite = function(req)\n"
		"  if req.from_host == 'acme.example' then\n"
		"    return {shtag = 'acme', target = 'sip:pbx@' .. req.uri_host}\n"
		"  end\n"
		"  if req.uri_user == 'nobody' then return nil end\n"
		"  return {reject = 403}\n"
		"end }\n");
	ck_assert_int_eq(fixture_start(RUNNING), 0);
	req.file = path;

	ck_assert_msg(simulate(&req, msg, sizeof(msg)) == 0, "%s", msg);
	assert_report_has("{\"action\":\"invite\",\"shtag\":\"acme\","
			  "\"target\":\"sip:pbx@example.org\",\"dialogs\":1}");

	req.from = "sip:eve@evil.example";
	ck_assert_msg(simulate(&req, msg, sizeof(msg)) == 0, "%s", msg);
	assert_report_has("{\"action\":\"invite\",\"reject\":403,"
			  "\"reason\":\"Rejected by policy\",\"dialogs\":0}");

	req.ruri = "sip:nobody@example.org";
	ck_assert_msg(simulate(&req, msg, sizeof(msg)) == 0, "%s", msg);
	assert_report_has("{\"action\":\"invite\",\"default\":true,"
			  "\"dialogs\":1}");

	/* the running policy has no on_initial_invite: the default */
	req.file = NULL;
	ck_assert_msg(simulate(&req, msg, sizeof(msg)) == 0, "%s", msg);
	assert_report_has("\"called\":false");
	assert_report_has("\"default\":true");

	req.from = "sip:a@b\r\nVia: x";
	ck_assert_int_eq(simulate(&req, msg, sizeof(msg)), EBADMSG);
	ck_assert_str_eq(msg, "invite: from holds a forbidden character");
	req.from = "sip:alice@acme.example";
	req.ruri = "not a uri";
	ck_assert_int_eq(simulate(&req, msg, sizeof(msg)), EBADMSG);
}
END_TEST


START_TEST(test_errors_reported)
{
	struct policy_sim_req req = {.event = POLICY_SIM_NODE_DOWN,
				     .node = "n2"};
	char path[160], msg[256];

	ck_assert_int_eq(fixture_start(RUNNING), 0);
	req.file = path;

	/* a load error, as a reload reports it */
	candidate_write(path, sizeof(path), "return { on_node_down = }\n");
	ck_assert_int_eq(simulate(&req, msg, sizeof(msg)), EINVAL);
	ck_assert_msg(strstr(msg, "other.lua:1:"), "%s", msg);

	/* load-time code over budget */
	candidate_write(path, sizeof(path), "while true do end\n");
	ck_assert_int_eq(simulate(&req, msg, sizeof(msg)), ETIMEDOUT);
	ck_assert_msg(strstr(msg, "budget"), "%s", msg);

	/* the hook over budget: the actions before it, and the error */
	candidate_write(path, sizeof(path),
		"return { on_node_down = function(node)\n"
		"  rehome.take('t1')\n"
		"  while true do end\n"
		"end }\n");
	ck_assert_msg(simulate(&req, msg, sizeof(msg)) == 0, "%s", msg);
	assert_report_has("{\"action\":\"take\",\"tag\":\"t1\"");
	assert_report_has("\"error\":\"");
	assert_report_has("other.lua:3: instruction budget of 1000000 "
			  "exceeded\"");

	/* none of it touched the running policy */
	ck_assert_ptr_null(policy_last_error());
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DOWN), 0);
	ck_assert_msg(spy_has("running:1"), "%s", spy.log);

	/* bad requests */
	req.node = NULL;
	ck_assert_int_eq(simulate(&req, msg, sizeof(msg)), EBADMSG);
	req.node = "n2";
	req.file = "/nonexistent/policy.lua";
	ck_assert_int_eq(simulate(&req, msg, sizeof(msg)), EINVAL);
	ck_assert_msg(strstr(msg, "cannot open"), "%s", msg);
}
END_TEST


START_TEST(test_no_policy)
{
	struct policy_sim_req req = {.event = POLICY_SIM_TICK};
	char msg[256];

	ck_assert_int_eq(policy_init(NULL, fixture_libdir, &spy_ops), 0);
	ck_assert_int_eq(simulate(&req, msg, sizeof(msg)), ENOENT);
	ck_assert_str_eq(msg, "no policy configured");
}
END_TEST


static Suite *policy_sim_suite(void)
{
	Suite *s = suite_create("policy_sim");
	TCase *tc = tcase_create("simulate");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_add_test(tc, test_actions_recorded);
	tcase_add_test(tc, test_running_untouched);
	tcase_add_test(tc, test_node_shown_up);
	tcase_add_test(tc, test_tick);
	tcase_add_test(tc, test_invite);
	tcase_add_test(tc, test_errors_reported);
	tcase_add_test(tc, test_no_policy);
	suite_add_tcase(s, tc);

	return s;
}


int main(void)
{
	return fixture_main(policy_sim_suite());
}
