/**
 * @file test_policy.c  The Lua policy host, driven with fake engine ops
 *
 * Policies report what they saw through rehome.release("key=value"): the
 * fake release() appends each string to a log the tests search. Policy
 * files live in a fresh temporary directory per test; the libre loop (with
 * libuv inside) is run with re_main and stopped by a polling libre timer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <check.h>
#include <uv.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "uvre.h"
#include "ctl.h"
#include "metrics.h"
#include "policy.h"

struct pending {
	policy_done_h *h;
	void *arg;
};

static struct {
	char log[16384];
	struct pending take, rehome, move;
	char dialogs_tag[64];
	uint32_t dialogs_limit;
} spy;

static char dir[64];
static char path[128];
static char libdir[512];

/* ---- the fake engine ---- */

static void spy_add(const char *fmt, ...)
{
	size_t n = strlen(spy.log);
	va_list ap;

	va_start(ap, fmt);
	(void)re_vsnprintf(spy.log + n, sizeof(spy.log) - n, fmt, ap);
	va_end(ap);
	n = strlen(spy.log);
	if (n + 1 < sizeof(spy.log))
		strcpy(spy.log + n, "\n");
}


static bool spy_has(const char *line)
{
	char buf[512];

	re_snprintf(buf, sizeof(buf), "\n%s\n", line);
	return NULL != strstr(spy.log, buf) ||
	       0 == strncmp(spy.log, buf + 1, strlen(buf + 1));
}


static size_t spy_count(const char *line)
{
	size_t n = 0;

	for (const char *p = spy.log; (p = strstr(p, line)); p++)
		n++;

	return n;
}


static const char *fake_node_id(void *arg)
{
	(void)arg;
	return "n1";
}


static struct odict *node(const char *id, const char *state, bool self)
{
	struct odict *od;

	ck_assert_int_eq(odict_alloc(&od, 4), 0);
	odict_entry_add(od, "id", ODICT_STRING, id);
	odict_entry_add(od, "state", ODICT_STRING, state);
	odict_entry_add(od, "self", ODICT_BOOL, self);
	odict_entry_add(od, "calls", ODICT_INT, (int64_t)7);
	return od;
}


static void add_obj(struct odict *to, const char *key, int type,
		    struct odict *od)
{
	ck_assert_int_eq(odict_entry_add(to, key, type, od), 0);
	mem_deref(od);
}


static int fake_nodes(struct odict **odp, void *arg)
{
	(void)arg;

	ck_assert_int_eq(odict_alloc(odp, 4), 0);
	add_obj(*odp, "0", ODICT_OBJECT, node("n1", "up", true));
	add_obj(*odp, "1", ODICT_OBJECT, node("n2", "down", false));
	return 0;
}


static int fake_shtags(struct odict **odp, void *arg)
{
	struct odict *t;
	(void)arg;

	ck_assert_int_eq(odict_alloc(odp, 4), 0);
	ck_assert_int_eq(odict_alloc(&t, 4), 0);
	odict_entry_add(t, "name", ODICT_STRING, "t1");
	odict_entry_add(t, "active", ODICT_STRING, "n2");
	odict_entry_add(t, "epoch", ODICT_INT, (int64_t)3);
	odict_entry_add(t, "mine", ODICT_NULL);
	add_obj(*odp, "0", ODICT_OBJECT, t);
	return 0;
}


static int fake_dialogs(struct odict **odp, const char *tag, uint32_t limit,
			void *arg)
{
	struct odict *d;
	(void)arg;

	str_ncpy(spy.dialogs_tag, tag ? tag : "(all)",
		 sizeof(spy.dialogs_tag));
	spy.dialogs_limit = limit;

	ck_assert_int_eq(odict_alloc(odp, 4), 0);
	ck_assert_int_eq(odict_alloc(&d, 4), 0);
	odict_entry_add(d, "did", ODICT_STRING, "d1");
	odict_entry_add(d, "call_id", ODICT_STRING, "c1");
	add_obj(*odp, "0", ODICT_OBJECT, d);
	return 0;
}


static int fake_stats(struct odict **odp, void *arg)
{
	struct odict *nodes, *n1;
	(void)arg;

	ck_assert_int_eq(odict_alloc(odp, 8), 0);
	ck_assert_int_eq(odict_alloc(&nodes, 4), 0);
	ck_assert_int_eq(odict_alloc(&n1, 4), 0);
	odict_entry_add(*odp, "node", ODICT_STRING, "n1");
	odict_entry_add(*odp, "cps", ODICT_DOUBLE, 2.5);
	odict_entry_add(*odp, "calls", ODICT_INT, (int64_t)7);
	odict_entry_add(n1, "calls", ODICT_INT, (int64_t)7);
	odict_entry_add(n1, "state", ODICT_STRING, "up");
	add_obj(nodes, "n1", ODICT_OBJECT, n1);
	add_obj(*odp, "nodes", ODICT_OBJECT, nodes);
	return 0;
}


static int fake_take(const char *tag, policy_done_h *doneh, void *done_arg,
		     void *arg)
{
	(void)arg;

	spy_add("op:take:%s", tag);
	spy.take.h = doneh;
	spy.take.arg = done_arg;
	return 0;
}


static int fake_release(const char *tag, void *arg)
{
	(void)arg;

	spy_add("%s", tag);
	return 0;
}


static int fake_rehome(const struct policy_rehome *req, policy_done_h *doneh,
		       void *done_arg, void *arg)
{
	(void)arg;

	spy_add("op:rehome:%s:%s:%s:%u", req->tag, req->mode ? req->mode : "-",
		req->body ? req->body : "-", req->rate);
	spy.rehome.h = doneh;
	spy.rehome.arg = done_arg;
	return 0;
}


static int fake_move(const struct policy_move *req, policy_done_h *doneh,
		     void *done_arg, void *arg)
{
	(void)arg;

	if (req->count == 1)
		return EBUSY;

	spy_add("op:move:%s:%s:%u:%u", req->tag, req->to, req->count,
		req->percent);
	spy.move.h = doneh;
	spy.move.arg = done_arg;
	return 0;
}


static const struct policy_ops ops = {
	.node_id = fake_node_id,
	.nodes   = fake_nodes,
	.shtags  = fake_shtags,
	.dialogs = fake_dialogs,
	.stats   = fake_stats,
	.take    = fake_take,
	.release = fake_release,
	.rehome  = fake_rehome,
	.move    = fake_move,
};

/* ---- files and the loop ---- */

static void write_file(const char *file, const char *src)
{
	FILE *f = fopen(file, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(src, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}


/** Write a new version next to the policy and rename it over: how editors
 * and deploy tools replace files */
static void rename_replace(const char *src)
{
	char tmp[160];

	re_snprintf(tmp, sizeof(tmp), "%s/.policy.lua.new", dir);
	write_file(tmp, src);
	ck_assert_int_eq(rename(tmp, path), 0);
}


/** A second policy file, beside the first */
static void other_path(char *buf, size_t sz)
{
	re_snprintf(buf, sz, "%s/other.lua", dir);
}


static int start(const char *src)
{
	write_file(path, src);
	return policy_init(path, libdir, &ops);
}


static struct {
	struct tmr poll, action;
	bool (*cond)(void);
	uint64_t deadline;
	bool met;
} lp;


static void poll_handler(void *arg)
{
	(void)arg;

	if (lp.cond && lp.cond()) {
		lp.met = true;
		re_cancel();
	}
	else if (tmr_jiffies() >= lp.deadline) {
		re_cancel();
	}
	else {
		tmr_start(&lp.poll, 10, poll_handler, NULL);
	}
}


/** Run the loop until cond() holds or ms have passed; cond() held? */
static bool run_until(bool (*cond)(void), uint64_t ms)
{
	lp.cond = cond;
	lp.deadline = tmr_jiffies() + ms;
	lp.met = false;
	tmr_start(&lp.poll, 10, poll_handler, NULL);
	ck_assert_int_eq(re_main(NULL), 0);
	tmr_cancel(&lp.poll);
	return lp.met;
}


static struct sip_msg *invite(void)
{
	static const char raw[] =
		"INVITE sip:bob@example.org:5070 SIP/2.0\r\n"
		"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
		"Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK2\r\n"
		"Max-Forwards: 70\r\n"
		"From: \"Alice\" <sip:alice@a.example.com>;tag=ft1\r\n"
		"To: <sip:bob@example.org>\r\n"
		"Call-ID: cid-42@host\r\n"
		"CSeq: 1 INVITE\r\n"
		"X-Tenant: tenant-b\r\n"
		"Content-Length: 0\r\n"
		"\r\n";
	struct sip_msg *msg = NULL;
	struct mbuf *mb = mbuf_alloc(sizeof(raw));

	ck_assert_ptr_nonnull(mb);
	ck_assert_int_eq(mbuf_write_str(mb, raw), 0);
	mb->pos = 0;
	ck_assert_int_eq(sip_msg_decode(&msg, mb), 0);
	mem_deref(mb);

	ck_assert_int_eq(sa_set_str(&msg->src, "192.0.2.7", 5062), 0);
	msg->tp = SIP_TRANSP_UDP;
	return msg;
}


static int invite_decide(struct policy_decision *out)
{
	struct sip_msg *msg = invite();
	int err = policy_initial_invite(msg, "public", out);

	mem_deref(msg);
	return err;
}


static void assert_error_has(const char *what)
{
	const char *e = policy_last_error();

	ck_assert_ptr_nonnull(e);
	ck_assert_msg(strstr(e, what), "'%s' not in '%s'", what, e);
}


static void setup(void)
{
	const char *src = getenv("REHOME_SRC");

	ck_assert_msg(src != NULL, "REHOME_SRC must name the source tree");
	re_snprintf(libdir, sizeof(libdir), "%s/lua", src);

	ck_assert_int_eq(libre_init(), 0);
	ck_assert_int_eq(uvre_init(), 0);
	memset(&spy, 0, sizeof(spy));
	memset(&lp, 0, sizeof(lp));
	tmr_init(&lp.poll);
	tmr_init(&lp.action);

	strcpy(dir, "/tmp/rehome-policy-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	re_snprintf(path, sizeof(path), "%s/policy.lua", dir);
}


static void teardown(void)
{
	char tmp[160];

	tmr_cancel(&lp.poll);
	tmr_cancel(&lp.action);
	policy_close();
	ctl_close();
	uvre_close();
	libre_close();

	re_snprintf(tmp, sizeof(tmp), "%s/.policy.lua.new", dir);
	(void)unlink(tmp);
	other_path(tmp, sizeof(tmp));
	(void)unlink(tmp);
	(void)unlink(path);
	(void)rmdir(dir);
}

/* ---- hooks get the documented arguments ---- */

static const char SPY[] =
	"local rehome = require 'rehome'\n"
	"local function spy(k, v) rehome.release(k .. '=' .. tostring(v)) "
	"end\n";


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
		"end }\n", SPY);
	ck_assert_int_eq(start(src), 0);

	ck_assert_int_eq(invite_decide(&d), 0);
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

	ck_assert_int_eq(start(
		"local n = 0\n"
		"return { on_initial_invite = function(req)\n"
		"  n = n + 1\n"
		"  if n == 1 then return {reject = 486, reason = 'Busy Here'} "
		"end\n"
		"  return {reject = 403}\n"
		"end }\n"), 0);

	ck_assert_int_eq(invite_decide(&d), 0);
	ck_assert_int_eq(d.scode, 486);
	ck_assert_str_eq(d.reason, "Busy Here");

	ck_assert_int_eq(invite_decide(&d), 0);
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
		ck_assert_int_eq(start(src), 0);

		ck_assert_int_eq(invite_decide(&d), EINVAL);
		ck_assert_str_eq(d.shtag, "");
		ck_assert_str_eq(d.target, "");
		ck_assert_int_eq(d.scode, 0);
		assert_error_has(bad[i + 1]);
		policy_close();
	}
}
END_TEST


START_TEST(test_invite_no_hook)
{
	struct policy_decision d = {.scode = 1};

	ck_assert_int_eq(start("return { on_tick = function() end }\n"), 0);
	ck_assert_int_eq(invite_decide(&d), 0);
	ck_assert_int_eq(d.scode, 0);
	ck_assert_str_eq(d.shtag, "");
}
END_TEST


START_TEST(test_no_policy)
{
	struct policy_decision d = {.scode = 1};
	char msg[128];

	ck_assert_int_eq(policy_init(NULL, libdir, &ops), 0);
	ck_assert_int_eq(invite_decide(&d), 0);
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
		"}\n", SPY);
	ck_assert_int_eq(start(src), 0);

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
		"end }\n", SPY);
	ck_assert_int_eq(start(src), 0);

	ck_assert_int_eq(odict_alloc(&res, 8), 0);
	ck_assert_int_eq(odict_alloc(&fails, 4), 0);
	ck_assert_int_eq(odict_alloc(&f1, 4), 0);
	odict_entry_add(f1, "did", ODICT_STRING, "d9");
	odict_entry_add(f1, "code", ODICT_INT, (int64_t)408);
	add_obj(fails, "0", ODICT_OBJECT, f1);
	odict_entry_add(res, "tag", ODICT_STRING, "t1");
	odict_entry_add(res, "ok", ODICT_BOOL, true);
	odict_entry_add(res, "moved", ODICT_INT, (int64_t)10);
	odict_entry_add(res, "none", ODICT_NULL);
	add_obj(res, "failures", ODICT_ARRAY, fails);

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
		"end }\n", SPY);
	ck_assert_int_eq(start(src), 0);

	t0 = tmr_jiffies();
	ck_assert(run_until(ticked, 2000));
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
		"end }\n", SPY);
	ck_assert_int_eq(start(src), 0);
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
	const struct policy_ops few = {.release = fake_release};
	char src[512];

	re_snprintf(src, sizeof(src), "%s"
		"return { on_node_up = function()\n"
		"  spy('take', select(2, rehome.take('t1')))\n"
		"  spy('nodes', select(2, rehome.nodes()))\n"
		"  spy('id', rehome.node_id())\n"
		"end }\n", SPY);
	write_file(path, src);
	ck_assert_int_eq(policy_init(path, libdir, &few), 0);
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
		"end }\n", SPY);
	ck_assert_int_eq(start(src), 0);
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
		"end }\n", SPY);
	ck_assert_int_eq(start(src), 0);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert(spy_has("many=false"));
	ck_assert(!after_fired());

	ck_assert(run_until(after_fired, 1000));
}
END_TEST

/* ---- runaway, errors, memory ---- */

START_TEST(test_runaway_loop)
{
	struct policy_decision d;
	char src[1024];
	uint64_t t0;

	re_snprintf(src, sizeof(src), "%s"
		"return {\n"
		"  on_initial_invite = function()\n"
		"    while true do end\n"
		"  end,\n"
		"  on_node_down = function()\n"
		"    while true do pcall(function() while true do end end) end\n"
		"  end,\n"
		"  on_node_up = function(n) spy('up', n) end,\n"
		"}\n", SPY);
	ck_assert_int_eq(start(src), 0);

	t0 = tmr_jiffies();
	ck_assert_int_eq(invite_decide(&d), ETIMEDOUT);
	ck_assert_uint_lt(tmr_jiffies() - t0, 1000);
	ck_assert_str_eq(d.shtag, "");
	assert_error_has("policy.lua:5: instruction budget");
	assert_error_has("on_initial_invite");

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
	uint64_t t0;

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
		"}\n", SPY);
	ck_assert_int_eq(start(src), 0);

	/* Lua's own matcher would take seconds */
	t0 = tmr_jiffies();
	ck_assert_int_eq(invite_decide(&d), ETIMEDOUT);
	ck_assert_uint_lt(tmr_jiffies() - t0, 500);
	ck_assert_str_eq(d.shtag, "");
	assert_error_has("policy.lua:6: instruction budget of 1000000 "
			 "exceeded");

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DOWN), ETIMEDOUT);
	ck_assert(!spy_has("swallowed=false"));

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert(spy_has("up=n2"));
}
END_TEST


START_TEST(test_cpu_budget)
{
	char src[1024];
	uint64_t t0;

	/* a few instructions, each a pass over 4 MiB in C: the instruction
	   count alone would first look after some seconds */
	re_snprintf(src, sizeof(src), "%s"
		"return {\n"
		"  on_node_down = function()\n"
		"    local s = string.rep('x', 1 << 22)\n"
		"    while true do pcall(string.upper, s) end\n"
		"  end,\n"
		"  on_node_up = function(n) spy('up', n) end,\n"
		"}\n", SPY);
	ck_assert_int_eq(start(src), 0);

	t0 = tmr_jiffies();
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DOWN), ETIMEDOUT);
	ck_assert_uint_lt(tmr_jiffies() - t0, 1000);
	assert_error_has("policy.lua:6: CPU time budget of 100 ms exceeded");

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert(spy_has("up=n2"));
}
END_TEST


START_TEST(test_runaway_at_load)
{
	ck_assert_int_eq(start("while true do end\n"), ETIMEDOUT);
}
END_TEST


START_TEST(test_error_file_line)
{
	ck_assert_int_eq(start(
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
	assert_error_has("policy.lua:3: boom");

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), EINVAL);
	assert_error_has("policy.lua:7: attempt to index");

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DRAINING),
			 EINVAL);
	assert_error_has("error object is a table value");
}
END_TEST


/** Filling the memory limit may take longer than the CPU time budget:
 * either stops a hoarding hook */
static void assert_overrun(int err)
{
	ck_assert_msg(err == ENOMEM || err == ETIMEDOUT, "error %d", err);
	if (err == ENOMEM)
		assert_error_has("not enough memory");
	else
		assert_error_has("CPU time budget of 100 ms exceeded");
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
		"}\n", SPY);
	ck_assert_int_eq(start(src), 0);

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DOWN), ENOMEM);
	assert_error_has("not enough memory");
	assert_overrun(policy_node_event("n2", POLICY_NODE_DRAINING));

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert(spy_has("up=n2"));
	ck_assert(!spy_has("len=1073741824"));
}
END_TEST


static bool loaded_twice(void)
{
	return spy_count("loaded=yes") == 2;
}


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
		"}\n", SPY);
	ck_assert_int_eq(start(src), 0);

	/* a call may run out of CPU time long before it fills the state
	   (fresh pages are slow, the more under a sanitizer): the policy
	   hoards on through callbacks, each a call of its own, until an
	   overrun finds the state more than half full */
	assert_overrun(policy_node_event("n2", POLICY_NODE_DOWN));
	ck_assert(run_until(loaded_twice, 10000));

	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert_msg(spy_has("up=n20"), "%s", spy.log);
}
END_TEST


static bool never(void);


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
		"}\n", SPY);
	ck_assert_int_eq(start(src), 0);

	/* an overrun holds the hook back: the default, without running it */
	ck_assert_int_eq(invite_decide(&d), ETIMEDOUT);
	ck_assert_int_eq(invite_decide(&d), EAGAIN);
	ck_assert_str_eq(d.shtag, "");
	ck_assert_uint_eq(spy_count("run=invite"), 1);

	/* for a second; then it runs again, and the next hold is longer */
	ck_assert(!run_until(never, 1100));
	ck_assert_int_eq(invite_decide(&d), ETIMEDOUT);
	ck_assert(!run_until(never, 1100));
	ck_assert_int_eq(invite_decide(&d), EAGAIN);
	ck_assert_uint_eq(spy_count("run=invite"), 2);

	/* a plain error holds nothing back */
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DOWN), EINVAL);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DOWN), EINVAL);

	/* a reload may bring a fixed file: the hook runs at once */
	ck_assert_int_eq(policy_reload(msg, sizeof(msg)), 0);
	ck_assert_int_eq(invite_decide(&d), ETIMEDOUT);
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
		"end }\n", SPY);
	ck_assert_int_eq(start(src), 0);
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

	ck_assert_int_eq(start("\x1bLua\x54\x00"), EINVAL);
	ck_assert_int_eq(start("return 42\n"), EINVAL);
	ck_assert_int_eq(start("return { on_node_dwon = print }\n"), EINVAL);
	ck_assert_int_eq(start("return { on_tick = 1 }\n"), EINVAL);

	write_file(path, "return { on_node_dwon = print }\n");
	ck_assert_int_eq(policy_init(NULL, libdir, &ops), 0);
	ck_assert_int_eq(policy_reload(msg, sizeof(msg)), ENOENT);
}
END_TEST

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

	ck_assert_int_eq(start(V1), 0);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert(spy_has("v1:1"));

	/* syntax error: old policy and its state stay */
	write_file(path, "return { on_node_up = function() end end }\n");
	ck_assert_int_eq(policy_reload(msg, sizeof(msg)), EINVAL);
	ck_assert_msg(strstr(msg, "policy.lua:1:"), "%s", msg);
	assert_error_has("policy.lua:1:");
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert(spy_has("v1:2"));

	/* load-time error, and a misspelt hook */
	write_file(path, "error('not today')\n");
	ck_assert_int_eq(policy_reload(msg, sizeof(msg)), EINVAL);
	ck_assert_msg(strstr(msg, "policy.lua:1: not today"), "%s", msg);
	write_file(path, "return { on_node_dwon = print }\n");
	ck_assert_int_eq(policy_reload(msg, sizeof(msg)), EINVAL);
	ck_assert_msg(strstr(msg, "unknown hook 'on_node_dwon'"), "%s", msg);
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert(spy_has("v1:3"));

	/* a good one replaces it */
	write_file(path, V2);
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
	rename_replace(arg);
}


static void edit_handler(void *arg)
{
	changed_at = tmr_jiffies();
	write_file(path, arg);
}


/** Change the file 100 ms into the loop; seen within 1 s? */
static void assert_change_seen(tmr_h *change, const char *src)
{
	ck_assert_int_eq(start(V1), 0);
	tmr_start(&lp.action, 100, change, (void *)src);

	ck_assert_msg(run_until(sees_v2, 3000), "change not seen:\n%s",
		      spy.log);
	ck_assert_uint_lt(tmr_jiffies() - changed_at, 1000);
}


START_TEST(test_watch_rename_replace)
{
	assert_change_seen(replace_handler, V2);

	/* again: the watch must not have followed the replaced inode */
	tmr_start(&lp.action, 100, replace_handler, (void *)V3);
	ck_assert_msg(run_until(sees_v3, 3000), "second rename not seen");
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
	ck_assert_int_eq(start(V1), 0);
	tmr_start(&lp.action, 50, replace_handler,
		  "return { on_node_up = function( }\n");

	ck_assert(run_until(failed_reload, 1000));
	assert_error_has("policy.lua:1:");
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
	saving = fopen(path, "w");
	ck_assert_ptr_nonnull(saving);
	ck_assert_int_eq(fputs(HALF1, saving) >= 0, 1);
	ck_assert_int_eq(fflush(saving), 0);
	tmr_start(&lp.action, 100, second_half_handler, NULL);
}


static bool never(void)
{
	return false;
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
	ck_assert_int_eq(start(V1), 0);
	tmr_start(&lp.action, 50, first_half_handler, NULL);

	ck_assert_msg(run_until(sees_v2, 3000), "save not seen:\n%s",
		      spy.log);
	ck_assert_uint_ge(tmr_jiffies() - changed_at, POLICY_SETTLE_MS);

	(void)run_until(never, 2 * POLICY_SETTLE_MS);
	ck_assert_uint_eq(spy_count("loaded=v2"), 1);
	ck_assert_msg(!reload_failed_counted(), "the half file was loaded");
}
END_TEST


static void other_edit_handler(void *arg)
{
	char other[160];

	other_path(other, sizeof(other));
	write_file(other, arg);
}


START_TEST(test_set_file)
{
	char other[160], msg[256];

	ck_assert_int_eq(start(V1), 0);
	other_path(other, sizeof(other));
	write_file(other, V2);

	/* another file: loaded, and watched instead of the first */
	ck_assert_int_eq(policy_set_file(other, libdir, msg, sizeof(msg)), 0);
	ck_assert(sees_v2());
	tmr_start(&lp.action, 50, replace_handler, (void *)V3);
	(void)run_until(never, 3 * POLICY_SETTLE_MS);
	memset(&spy, 0, sizeof(spy));
	ck_assert(sees_v2());
	tmr_start(&lp.action, 50, other_edit_handler, (void *)V3);
	ck_assert_msg(run_until(sees_v3, 3000), "%s", spy.log);

	/* one that does not load changes nothing */
	write_file(path, "return {\n");
	ck_assert_int_eq(policy_set_file(path, libdir, msg, sizeof(msg)),
			 EINVAL);
	ck_assert_msg(strstr(msg, "policy.lua:"), "%s", msg);
	memset(&spy, 0, sizeof(spy));
	ck_assert(sees_v3());

	/* the same file again is a reload */
	write_file(other, V2);
	ck_assert_int_eq(policy_set_file(other, libdir, msg, sizeof(msg)), 0);
	ck_assert(sees_v2());

	/* none: hooks are no-ops */
	ck_assert_int_eq(policy_set_file(NULL, libdir, msg, sizeof(msg)), 0);
	memset(&spy, 0, sizeof(spy));
	ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_UP), 0);
	ck_assert_str_eq(spy.log, "");
	ck_assert_int_eq(policy_reload(msg, sizeof(msg)), ENOENT);
}
END_TEST


/* ---- the shipped policies load in the sandbox ---- */

static int start_shipped(const char *name)
{
	char file[600];

	re_snprintf(file, sizeof(file), "%s/../policies/%s.lua", libdir,
		    name);
	return policy_init(file, libdir, &ops);
}


START_TEST(test_shipped_policies)
{
	static const char *const names[] = {
		"failover", "active_active", "rebalance", "drain", "partition",
	};
	struct policy_decision d;

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		ck_assert_msg(start_shipped(names[i]) == 0, "%s", names[i]);
		ck_assert_int_eq(invite_decide(&d), 0);
		ck_assert_int_eq(policy_node_event("n2", POLICY_NODE_DOWN), 0);
		policy_close();
	}

	/* failover: n1 follows the dead n2, so it re-homes n2's tag */
	ck_assert_msg(spy_has("op:rehome:t1:challenge:-:0"), "%s", spy.log);

	ck_assert_int_eq(start_shipped("partition"), 0);
	ck_assert_int_eq(invite_decide(&d), 0);
	ck_assert_str_eq(d.shtag, "tenant-b");
	policy_close();

	ck_assert_int_eq(start_shipped("active_active"), 0);
	ck_assert_int_eq(invite_decide(&d), 0);
	ck_assert_str_eq(d.shtag, "n1");
}
END_TEST


static Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *hooks = tcase_create("hooks");
	TCase *api = tcase_create("api");
	TCase *safety = tcase_create("safety");
	TCase *reload = tcase_create("reload");

	tcase_add_checked_fixture(hooks, setup, teardown);
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

	tcase_add_checked_fixture(api, setup, teardown);
	tcase_add_test(api, test_api);
	tcase_add_test(api, test_api_not_supported);
	tcase_add_test(api, test_done_after_reload);
	tcase_add_test(api, test_after);
	suite_add_tcase(s, api);

	tcase_add_checked_fixture(safety, setup, teardown);
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

	tcase_add_checked_fixture(reload, setup, teardown);
	tcase_add_test(reload, test_reload);
	tcase_add_test(reload, test_watch_rename_replace);
	tcase_add_test(reload, test_watch_edit_in_place);
	tcase_add_test(reload, test_watch_syntax_error);
	tcase_add_test(reload, test_watch_settles);
	tcase_add_test(reload, test_set_file);
	suite_add_tcase(s, reload);

	return s;
}


int main(void)
{
	SRunner *sr = srunner_create(policy_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
