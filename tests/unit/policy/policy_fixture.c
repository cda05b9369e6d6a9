/**
 * @file policy_fixture.c  The policy tests' fake engine, files and loop
 *
 * Policies report what they saw through rehome.release("key=value"): the
 * fake release() appends each string to a log the tests search (spy_*).
 * Policy files live in a fresh temporary directory per test; the libre
 * loop (with libuv inside) is run with re_main and stopped by a polling
 * libre timer (fixture_*). Each test runs in a process of its own (check
 * forks), which initialises libre and libuv in its setup.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <check.h>
#include <uv.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "uvre.h"
#include "ctl.h"
#include "policy.h"
#include "policy_fixture.h"

struct spy spy;
char fixture_path[128];
char fixture_libdir[512];
struct tmr fixture_action;
static char fixture_dir[64];

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


bool spy_has(const char *line)
{
	char buf[512];

	re_snprintf(buf, sizeof(buf), "\n%s\n", line);
	return NULL != strstr(spy.log, buf) ||
	       0 == strncmp(spy.log, buf + 1, strlen(buf + 1));
}


size_t spy_count(const char *line)
{
	size_t n = 0;

	for (const char *p = spy.log; (p = strstr(p, line)); p++)
		n++;

	return n;
}


/** The policy's part: spy(k, v) reports "k=v" */
const char spy_lua[] =
	"local rehome = require 'rehome'\n"
	"local function spy(k, v) rehome.release(k .. '=' .. tostring(v)) "
	"end\n";


/** A policy that reports loaded=yes when it loads, loaded again? */
bool spy_loaded_twice(void)
{
	return spy_count("loaded=yes") == 2;
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


void spy_add_obj(struct odict *to, const char *key, int type,
		 struct odict *od)
{
	ck_assert_int_eq(odict_entry_add(to, key, type, od), 0);
	mem_deref(od);
}


static int fake_nodes(struct odict **odp, void *arg)
{
	(void)arg;

	ck_assert_int_eq(odict_alloc(odp, 4), 0);
	spy_add_obj(*odp, "0", ODICT_OBJECT, node("n1", "up", true));
	spy_add_obj(*odp, "1", ODICT_OBJECT, node("n2", "down", false));
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
	spy_add_obj(*odp, "0", ODICT_OBJECT, t);
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
	spy_add_obj(*odp, "0", ODICT_OBJECT, d);
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
	spy_add_obj(nodes, "n1", ODICT_OBJECT, n1);
	spy_add_obj(*odp, "nodes", ODICT_OBJECT, nodes);
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


int spy_release(const char *tag, void *arg)
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


const struct policy_ops spy_ops = {
	.node_id = fake_node_id,
	.nodes   = fake_nodes,
	.shtags  = fake_shtags,
	.dialogs = fake_dialogs,
	.stats   = fake_stats,
	.take    = fake_take,
	.release = spy_release,
	.rehome  = fake_rehome,
	.move    = fake_move,
};

/* ---- files and the loop ---- */

void fixture_write_file(const char *file, const char *src)
{
	FILE *f = fopen(file, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(src, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}


/** Write a new version next to the policy and rename it over: how editors
 * and deploy tools replace files */
void fixture_rename_replace(const char *src)
{
	char tmp[160];

	re_snprintf(tmp, sizeof(tmp), "%s/.policy.lua.new", fixture_dir);
	fixture_write_file(tmp, src);
	ck_assert_int_eq(rename(tmp, fixture_path), 0);
}


/** A second policy file, beside the first */
void fixture_other_path(char *buf, size_t sz)
{
	re_snprintf(buf, sz, "%s/other.lua", fixture_dir);
}


int fixture_start(const char *src)
{
	fixture_write_file(fixture_path, src);
	return policy_init(fixture_path, fixture_libdir, &spy_ops);
}


static struct {
	struct tmr poll;
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
bool fixture_run_until(bool (*cond)(void), uint64_t ms)
{
	lp.cond = cond;
	lp.deadline = tmr_jiffies() + ms;
	lp.met = false;
	tmr_start(&lp.poll, 10, poll_handler, NULL);
	ck_assert_int_eq(re_main(NULL), 0);
	tmr_cancel(&lp.poll);
	return lp.met;
}


bool fixture_never(void)
{
	return false;
}


/* The CPU time this process used, in ms: a budget's "stopped at once" is
 * little work done, which the wall clock of a loaded machine does not
 * tell (a 1 s bound on it failed under ASan with a load average of 16) */
double fixture_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
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


int fixture_invite_decide(struct policy_decision *out)
{
	struct sip_msg *msg = invite();
	int err = policy_initial_invite(msg, "public", out);

	mem_deref(msg);
	return err;
}


void fixture_assert_error_has(const char *what)
{
	const char *e = policy_last_error();

	ck_assert_ptr_nonnull(e);
	ck_assert_msg(strstr(e, what), "'%s' not in '%s'", what, e);
}


void fixture_setup(void)
{
	const char *src = getenv("REHOME_SRC");

	ck_assert_msg(src != NULL, "REHOME_SRC must name the source tree");
	re_snprintf(fixture_libdir, sizeof(fixture_libdir), "%s/lua", src);

	ck_assert_int_eq(libre_init(), 0);
	ck_assert_int_eq(uvre_init(), 0);
	memset(&spy, 0, sizeof(spy));
	memset(&lp, 0, sizeof(lp));
	tmr_init(&lp.poll);
	tmr_init(&fixture_action);

	strcpy(fixture_dir, "/tmp/rehome-policy-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fixture_dir));
	re_snprintf(fixture_path, sizeof(fixture_path), "%s/policy.lua",
		    fixture_dir);
}


void fixture_teardown(void)
{
	char tmp[160];

	tmr_cancel(&lp.poll);
	tmr_cancel(&fixture_action);
	policy_close();
	ctl_close();
	uvre_close();
	libre_close();

	re_snprintf(tmp, sizeof(tmp), "%s/.policy.lua.new", fixture_dir);
	(void)unlink(tmp);
	fixture_other_path(tmp, sizeof(tmp));
	(void)unlink(tmp);
	(void)unlink(fixture_path);
	(void)rmdir(fixture_dir);
}


int fixture_main(Suite *suite)
{
	SRunner *sr = srunner_create(suite);
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
