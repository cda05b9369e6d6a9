/**
 * @file test_repl.c  Unit tests of the cluster layer against a real redis-server
 *
 * One node (n1) runs in this process: Redis client, heartbeats, sharing
 * tags and replication, on the real main loop. The test plays the other
 * node (n2) through a plain blocking hiredis connection: it writes tag
 * states, snapshots and signed messages exactly as a node would, and reads
 * back what n1 wrote. Each test starts its own redis-server on 127.0.0.1
 * (port 27101, or REHOME_TEST_REDIS_PORT) and stops it by pid; the Redis
 * restart test stops and starts it in the middle.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <uv.h>
#include <check.h>
#include <hiredis/hiredis.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "uvre.h"
#include "did.h"
#include "cseq.h"
#include "dialog.h"
#include "ctl.h"
#include "redis.h"
#include "cluster.h"
#include "shtag.h"
#include "repl.h"

#define SECRET "s3cret"

static uint16_t port = 27101;
static pid_t redis_pid;
static struct rh_conf cfg;
static redisContext *rc;          /* the test's own connection: "n2" */


/* ---- redis-server ---------------------------------------------------- */


static bool port_free(uint16_t p)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int on = 1;
	bool ok;

	/* as redis-server does: connections in TIME_WAIT do not count */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(p);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = fd >= 0 && !bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	if (fd >= 0)
		close(fd);

	return ok;
}


/** Start redis-server on `port` and make sure it is ours (its pid). */
static void redis_start(void)
{
	char p[8], pid[32];
	redisReply *r;

	ck_assert_msg(port_free(port), "port %u is taken", port);
	re_snprintf(p, sizeof(p), "%u", port);
	redis_pid = fork();
	ck_assert_int_ge(redis_pid, 0);
	if (redis_pid == 0) {
		/* our sockets are not redis-server's business */
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		execlp("redis-server", "redis-server", "--port", p, "--bind",
		       "127.0.0.1", "--save", "", "--appendonly", "no",
		       "--logfile", "/dev/null", (char *)NULL);
		_exit(127);
	}

	for (int i = 0; i < 200 && !rc; i++) {
		rc = redisConnect("127.0.0.1", port);
		if (rc && rc->err) {
			redisFree(rc);
			rc = NULL;
			usleep(10000);
		}
	}
	ck_assert_msg(rc != NULL, "redis-server did not start on %u", port);

	r = redisCommand(rc, "INFO server");
	ck_assert(r && r->type == REDIS_REPLY_STRING);
	re_snprintf(pid, sizeof(pid), "process_id:%d\r", (int)redis_pid);
	ck_assert_msg(strstr(r->str, pid), "port %u: not our redis", port);
	freeReplyObject(r);
}


static void redis_stop(void)
{
	if (rc) {
		redisFree(rc);
		rc = NULL;
	}
	if (redis_pid > 0) {
		kill(redis_pid, SIGTERM);
		waitpid(redis_pid, NULL, 0);
		redis_pid = 0;
	}
}


static void cmd_ok(const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(rc, fmt, ap);
	va_end(ap);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_ne(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
}


/** GET/HGET-style string result, "" when nil */
static void cmd_str(char *buf, size_t sz, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(rc, fmt, ap);
	va_end(ap);
	ck_assert_ptr_nonnull(r);
	buf[0] = '\0';
	if (r->type == REDIS_REPLY_STRING)
		str_ncpy(buf, r->str, sz);
	freeReplyObject(r);
}


static long long cmd_int(const char *fmt, ...)
{
	redisReply *r;
	long long v;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(rc, fmt, ap);
	va_end(ap);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
	v = r->integer;
	freeReplyObject(r);

	return v;
}


static uint64_t snapshot_ver(uint64_t did)
{
	char v[32];

	cmd_str(v, sizeof(v), "HGET t:dlg:%016llx v", (unsigned long long)did);
	return strtoull(v, NULL, 10);
}


/* ---- the main loop --------------------------------------------------- */


typedef bool (cond_h)(void);
static cond_h *until;
static struct tmr poll_tmr, deadline_tmr;


static void poll_handler(void *arg)
{
	(void)arg;

	if (until())
		re_cancel();
	else
		tmr_start(&poll_tmr, 5, poll_handler, NULL);
}


static void deadline_handler(void *arg)
{
	(void)arg;
	re_cancel();
}


static bool run_until(cond_h *cond, uint32_t ms)
{
	until = cond;
	tmr_start(&poll_tmr, 0, poll_handler, NULL);
	tmr_start(&deadline_tmr, ms, deadline_handler, NULL);
	(void)re_main(NULL);
	tmr_cancel(&poll_tmr);
	tmr_cancel(&deadline_tmr);

	return cond();
}


static bool never(void)
{
	return false;
}


static void run_for(uint32_t ms)
{
	(void)run_until(never, ms);
}


/* ---- what n2 would send ---------------------------------------------- */


static char *seal(const char *body)
{
	struct hmac *h = NULL;
	uint8_t md[32];
	char *msg = NULL;

	ck_assert_int_eq(hmac_create(&h, HMAC_HASH_SHA256,
				     (const uint8_t *)SECRET, strlen(SECRET)),
			 0);
	ck_assert_int_eq(hmac_digest(h, md, sizeof(md),
				     (const uint8_t *)body, strlen(body)), 0);
	ck_assert_int_eq(re_sdprintf(&msg, "%w %s", md, sizeof(md), body), 0);
	mem_deref(h);

	return msg;
}


static void publish(const char *chan, const char *body)
{
	char *msg = seal(body);

	cmd_ok("PUBLISH t:%s %s", chan, msg);
	mem_deref(msg);
}


static void set_str(char **dst, const char *s)
{
	mem_deref(*dst);
	*dst = NULL;
	ck_assert_int_eq(str_dup(dst, s), 0);
}


static struct dialog *make_dialog(uint64_t did, const char *tag,
				  const char *owner)
{
	struct dialog *dlg = NULL;

	ck_assert_int_eq(dialog_alloc(&dlg, did), 0);
	set_str(&dlg->callid, "call-1@127.0.0.1");
	set_str(&dlg->from, "<sip:alice@127.0.0.1>;tag=a1");
	set_str(&dlg->to, "<sip:bob@127.0.0.1>");
	set_str(&dlg->to_tag, "b2");
	ck_assert_int_eq(dialog_atom_str(&dlg->shtag, tag), 0);
	ck_assert_int_eq(dialog_atom_str(&dlg->owner, owner), 0);
	set_str(&dlg->leg[LEG_CALLER].target, "sip:alice@127.0.0.1:27260");
	set_str(&dlg->leg[LEG_CALLEE].target, "sip:bob@127.0.0.1:27261");
	set_str(&dlg->leg[LEG_CALLER].sdp_in, "v=0\r\no=- 1 1 IN IP4 "
		"127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n");
	ck_assert_int_eq(dialog_atom_str(&dlg->leg[LEG_CALLER].lsnr_tag,
					 "pub"), 0);
	ck_assert_int_eq(dialog_atom_str(&dlg->leg[LEG_CALLEE].lsnr_tag,
					 "pub"), 0);
	dlg->leg[LEG_CALLER].cseq.rseq = 1;
	dlg->state = DIALOG_CONFIRMED;

	return dlg;
}


/** n2's replication message for dlg: header + dialog, as repl.c writes */
static char *peer_msg(const struct dialog *dlg, const char *ev,
		      uint64_t epoch)
{
	char hex[DID_STRSZ], *body = NULL, *msg;
	bool ended = !str_cmp(ev, "ended");

	ck_assert_int_eq(did_encode(hex, sizeof(hex), dlg->did), 0);
	ck_assert_int_eq(re_sdprintf(&body, "{\"node\":\"%s\",\"tag\":\"%s\","
				     "\"epoch\":%llu,\"ver\":%llu,\"ev\":\"%s\","
				     "\"did\":\"%s\",\"ts\":1}%s%H",
				     dlg->owner, dlg->shtag,
				     (unsigned long long)epoch,
				     (unsigned long long)dlg->version, ev,
				     hex, ended ? "" : "\n",
				     ended ? NULL : dialog_encode, dlg), 0);
	msg = seal(body);
	mem_deref(body);

	return msg;
}


static void peer_publish(const struct dialog *dlg, const char *ev,
			 uint64_t epoch)
{
	char *msg = peer_msg(dlg, ev, epoch);

	cmd_ok("PUBLISH t:repl %s", msg);
	mem_deref(msg);
}


static void peer_snapshot(const struct dialog *dlg, uint64_t epoch)
{
	char *msg = peer_msg(dlg, "updated", epoch);

	cmd_ok("HSET t:dlg:%016llx v %llu m %s", (unsigned long long)dlg->did,
	       (unsigned long long)dlg->version, msg);
	mem_deref(msg);
}


static void peer_heartbeat(void)
{
	publish("nodes", "{\"node\":\"n2\",\"state\":\"up\",\"synced\":true,"
		"\"ts\":1,\"listeners\":[{\"tag\":\"pub\",\"tp\":\"UDP\","
		"\"addr\":\"127.0.0.1:27250\"}]}");
}


/** n2 takes tag `name` from epoch `want`, as shtag.c's script would */
static bool peer_take(const char *name, uint64_t want)
{
	static const char lua[] =
		"local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
		"local e = 0\n"
		"if cur then e = tonumber(string.match(cur, '^(%d+)')) end\n"
		"if e ~= tonumber(ARGV[2]) then return 0 end\n"
		"redis.call('HSET', KEYS[1], ARGV[1], (e + 1) .. ' n2')\n"
		"redis.call('PUBLISH', 't:shtag', ARGV[3])\n"
		"return 1\n";
	char *body = NULL, *msg;
	long long won;

	ck_assert_int_eq(re_sdprintf(&body, "{\"tag\":\"%s\",\"epoch\":%llu,"
				     "\"holder\":\"n2\"}", name,
				     (unsigned long long)want + 1), 0);
	msg = seal(body);
	won = cmd_int("EVAL %s 1 t:shtags %s %llu %s", lua, name,
		      (unsigned long long)want, msg);
	mem_deref(msg);
	mem_deref(body);

	return won == 1;
}


/* ---- looking at n1 --------------------------------------------------- */


static int64_t repl_counter(const char *name)
{
	struct odict *od = NULL;
	const struct odict_entry *e;
	uint64_t v = 0;

	ck_assert_int_eq(odict_alloc(&od, 8), 0);
	ck_assert_int_eq(repl_status(od, NULL), 0);
	e = odict_get_type(od, ODICT_OBJECT, "repl");
	ck_assert_ptr_nonnull(e);
	ck_assert(odict_get_number(e->u.odict, &v, name));
	mem_deref(od);

	return (int64_t)v;
}


static bool synced(void)
{
	return cluster_synced();
}


static bool synced_active_a(void)
{
	return cluster_synced() && shtag_is_active("a");
}


static void node_start(void)
{
	ck_assert_int_eq(cluster_init(&cfg), 0);
	ck_assert_int_eq(repl_init(&cfg), 0);
	ck_assert(run_until(synced_active_a, 5000));
}


/* ---- fixture --------------------------------------------------------- */


static void setup(void)
{
	conf_defaults(&cfg);
	str_ncpy(cfg.node_id, "n1", sizeof(cfg.node_id));
	str_ncpy(cfg.cluster, "t", sizeof(cfg.cluster));
	str_ncpy(cfg.repl_secret, SECRET, sizeof(cfg.repl_secret));
	str_ncpy(cfg.redis_host, "127.0.0.1", sizeof(cfg.redis_host));
	cfg.redis_port = port;
	cfg.has_redis = true;
	cfg.node_timeout = 300;
	cfg.listenc = 1;
	cfg.listen[0].tp = SIP_TRANSP_UDP;
	(void)sa_set_str(&cfg.listen[0].addr, "127.0.0.1", 27201);
	str_ncpy(cfg.listen[0].tag, "pub", sizeof(cfg.listen[0].tag));
	cfg.shtagc = 2;
	str_ncpy(cfg.shtag[0].name, "a", sizeof(cfg.shtag[0].name));
	cfg.shtag[0].active = true;
	str_ncpy(cfg.shtag[1].name, "b", sizeof(cfg.shtag[1].name));
	cfg.shtag[1].active = false;

	redis_start();
	ck_assert_int_eq(uvre_init(), 0);
	ck_assert_int_eq(dialog_table_init(8), 0);
}


static void teardown(void)
{
	repl_close();
	cluster_close();
	ctl_close();
	dialog_table_close();
	uvre_close();
	redis_stop();
}


/* ---- tests ----------------------------------------------------------- */


START_TEST(t_start_claims_and_syncs)
{
	char v[128];

	node_start();

	cmd_str(v, sizeof(v), "HGET t:shtags a");
	ck_assert_str_eq(v, "1 n1");
	ck_assert_uint_eq(shtag_epoch("a"), 1);
	ck_assert(!shtag_is_active("b"));
	ck_assert_int_eq(cmd_int("EXISTS t:node:n1"), 1);
	ck_assert_int_eq(redis_state(), REDIS_ST_UP);
	ck_assert_str_eq(cluster_node_id(), "n1");
}
END_TEST


static uint64_t the_did;


static bool key_exists(void)
{
	return cmd_int("EXISTS t:dlg:%016llx",
		       (unsigned long long)the_did) == 1;
}


static bool key_gone(void)
{
	return !key_exists();
}


static bool two_sent(void)
{
	return repl_counter("sent") >= 2;
}


START_TEST(t_replicates_changes)
{
	struct dialog *dlg, *copy = NULL;
	redisContext *sub;
	redisReply *r;
	struct pl msg, body;
	char m[8192];
	const char *nl;

	node_start();

	sub = redisConnect("127.0.0.1", port);
	ck_assert(sub && !sub->err);
	r = redisCommand(sub, "SUBSCRIBE t:repl");
	freeReplyObject(r);

	the_did = 0x1122334455667788ULL;
	dlg = make_dialog(the_did, "a", "n1");
	ck_assert_int_eq(dialog_insert(dlg), 0);
	dialog_changed(dlg, DIALOG_EV_CREATED);
	ck_assert(run_until(key_exists, 2000));

	/* the snapshot is signed and carries exactly the dialog */
	cmd_str(m, sizeof(m), "HGET t:dlg:%016llx m",
		(unsigned long long)the_did);
	pl_set_str(&msg, m);
	ck_assert_int_eq(cluster_msg_open(&body, &msg), 0);
	nl = pl_strchr(&body, '\n');
	ck_assert_ptr_nonnull(nl);
	ck_assert_int_eq(dialog_decode(&copy, nl + 1,
				       body.l - (size_t)(nl + 1 - body.p)), 0);
	ck_assert(dialog_equal(dlg, copy));
	ck_assert_uint_eq(copy->version, dlg->version);
	mem_deref(copy);
	ck_assert_uint_eq(snapshot_ver(the_did), dlg->version);

	/* and it went out on the channel too, with the same bytes */
	ck_assert_int_eq(redisGetReply(sub, (void **)&r), REDIS_OK);
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	ck_assert_str_eq(r->element[2]->str, m);
	freeReplyObject(r);

	/* TTL = dialog_timeout */
	ck_assert_int_gt(cmd_int("PTTL t:dlg:%016llx",
				 (unsigned long long)the_did),
			 (long long)cfg.dialog_timeout * 1000 - 60000);

	dialog_end(dlg);
	mem_deref(dlg);
	ck_assert(run_until(two_sent, 2000));
	ck_assert(key_gone());

	redisFree(sub);
}
END_TEST


static struct dialog *peer;


static bool peer_applied(void)
{
	const struct dialog *d = dialog_lookup(peer->did);

	return d && d->version == peer->version;
}


static bool peer_gone(void)
{
	return !dialog_lookup(peer->did);
}


START_TEST(t_applies_peer_newer_only)
{
	const struct dialog *d;

	node_start();

	peer = make_dialog(0x0badcafe00000001ULL, "b", "n2");
	peer->version = 3;
	peer_publish(peer, "confirmed", 0);
	ck_assert(run_until(peer_applied, 2000));
	d = dialog_lookup(peer->did);
	ck_assert(d->replica);
	ck_assert(dialog_equal(d, peer));

	/* an older version is ignored */
	peer->version = 2;
	set_str(&peer->to_tag, "old");
	peer_publish(peer, "updated", 0);
	run_for(150);
	d = dialog_lookup(peer->did);
	ck_assert_uint_eq(d->version, 3);
	ck_assert_str_eq(d->to_tag, "b2");

	/* a newer one replaces it */
	peer->version = 4;
	set_str(&peer->to_tag, "new");
	peer_publish(peer, "updated", 0);
	ck_assert(run_until(peer_applied, 2000));
	ck_assert(dialog_equal(dialog_lookup(peer->did), peer));
	ck_assert_int_gt(repl_counter("received"), 1);

	/* ended: gone */
	peer->version = 5;
	peer_publish(peer, "ended", 0);
	ck_assert(run_until(peer_gone, 2000));

	peer = mem_deref(peer);
}
END_TEST


static bool three_dropped(void)
{
	return repl_counter("dropped") >= 3;
}


START_TEST(t_drops_forged)
{
	char *msg;

	node_start();

	peer = make_dialog(0x0badcafe00000002ULL, "b", "n2");
	peer->version = 1;
	msg = peer_msg(peer, "confirmed", 0);

	/* one flipped hex digit of the signature */
	msg[0] = msg[0] == '0' ? '1' : '0';
	cmd_ok("PUBLISH t:repl %s", msg);
	/* unsigned */
	memset(msg, '-', 64);
	cmd_ok("PUBLISH t:repl %s", msg);
	/* not even the format */
	cmd_ok("PUBLISH t:repl %s", "{\"node\":\"n2\"}");
	mem_deref(msg);

	ck_assert(run_until(three_dropped, 2000));
	ck_assert_int_eq(repl_counter("dropped"), 3);
	ck_assert_ptr_null(dialog_lookup(peer->did));

	/* the same message, properly signed, goes through */
	peer_publish(peer, "confirmed", 0);
	ck_assert(run_until(peer_applied, 2000));

	peer = mem_deref(peer);
}
END_TEST


static bool n2_alive(void)
{
	peer_heartbeat();
	return cluster_node_alive("n2");
}


static bool a_lost(void)
{
	peer_heartbeat();
	return !shtag_is_active("a");
}


static struct dialog *local;


static bool local_adopted_by_n2(void)
{
	const struct dialog *d = dialog_lookup(local->did);

	peer_heartbeat();
	return d && !str_cmp(d->owner, "n2");
}


static bool n2_dead(void)
{
	return !cluster_node_alive("n2");
}


START_TEST(t_steps_down_and_serve_rule)
{
	const struct dialog *d;
	struct dialog *late;
	const char *node = NULL;
	struct sa sa;

	node_start();

	local = make_dialog(0x5e7e000000000001ULL, "a", "n1");
	ck_assert_int_eq(dialog_insert(local), 0);
	dialog_changed(local, DIALOG_EV_CONFIRMED);
	the_did = local->did;
	ck_assert(run_until(key_exists, 2000));
	ck_assert_int_eq(repl_serve_rule(local, NULL), REPL_SERVE);

	ck_assert(run_until(n2_alive, 2000));
	ck_assert_int_eq(cluster_node_lsnr(&sa, "n2", "pub", SIP_TRANSP_UDP),
			 0);
	ck_assert_uint_eq(sa_port(&sa), 27250);

	/* n2 takes tag a: n1 steps down, its dialog becomes a replica */
	ck_assert(peer_take("a", shtag_epoch("a")));
	ck_assert(run_until(a_lost, 2000));
	ck_assert_str_eq(shtag_holder("a"), "n2");
	ck_assert_uint_eq(shtag_epoch("a"), 2);
	ck_assert(local->replica);
	/* owned by n1 still, but n1 no longer serves it: nobody does yet */
	ck_assert_int_eq(repl_serve_rule(local, NULL), REPL_HOLD);

	/* n2 adopts it: served by n2, so relayed there while n2 lives */
	peer = make_dialog(local->did, "a", "n2");
	peer->version = local->version + 1;
	peer_publish(peer, "updated", 2);
	ck_assert(run_until(local_adopted_by_n2, 2000));
	d = dialog_lookup(local->did);
	ck_assert(d->replica);
	ck_assert_int_eq(repl_serve_rule(d, &node), REPL_RELAY);
	ck_assert_str_eq(node, "n2");

	/* n2 dies: nobody may touch it until someone takes the tag */
	ck_assert(run_until(n2_dead, 2000));
	ck_assert_int_eq(repl_serve_rule(d, NULL), REPL_HOLD);

	/* a new call of a tag held by n2 is served here, not replicated */
	late = make_dialog(0x5e7e000000000002ULL, "a", "n1");
	ck_assert_int_eq(dialog_insert(late), 0);
	dialog_changed(late, DIALOG_EV_CREATED);
	the_did = late->did;
	run_for(200);
	ck_assert(!key_exists());
	ck_assert_int_eq(repl_serve_rule(late, NULL), REPL_SERVE);
	ck_assert_int_ge(repl_counter("not_replicated"), 1);

	mem_deref(late);
	local = mem_deref(local);
	peer = mem_deref(peer);
}
END_TEST


static int race_err;
static bool race_done;


static void race_result(int err, const char *name, bool active,
			uint64_t epoch, const char *holder, void *arg)
{
	(void)name;
	(void)active;
	(void)epoch;
	(void)holder;
	(void)arg;

	race_err = err;
	race_done = true;
}


static bool race_settled(void)
{
	char v[64], want[64];

	if (!race_done)
		return false;

	cmd_str(v, sizeof(v), "HGET t:shtags a");
	re_snprintf(want, sizeof(want), "%llu %s",
		    (unsigned long long)shtag_epoch("a"), shtag_holder("a"));
	return !str_cmp(v, want);
}


START_TEST(t_activate_race)
{
	unsigned won = 0, lost = 0;

	node_start();

	for (int i = 0; i < 60; i++) {
		uint64_t e = shtag_epoch("a");
		bool peer_won;

		race_done = false;
		ck_assert_int_eq(shtag_activate("a", race_result, NULL), 0);
		/* n2 asks for the same epoch: before or after n1's request */
		if (i % 2)
			run_for(1);
		peer_won = peer_take("a", e);
		ck_assert(run_until(race_settled, 2000));

		/* exactly one of the two took epoch e + 1 */
		if (peer_won) {
			ck_assert_int_eq(race_err, ESTALE);
			ck_assert(!shtag_is_active("a"));
			ck_assert_str_eq(shtag_holder("a"), "n2");
			++lost;
		}
		else {
			ck_assert_int_eq(race_err, 0);
			ck_assert(shtag_is_active("a"));
			++won;
		}
		ck_assert_uint_eq(shtag_epoch("a"), e + 1);
	}

	/* both orders happened */
	ck_assert_uint_gt(won, 0);
	ck_assert_uint_gt(lost, 0);
}
END_TEST


static bool redis_down(void)
{
	return redis_state() == REDIS_ST_DOWN;
}


START_TEST(t_redis_restart)
{
	struct dialog *live, *gone, *born;
	char v[64];

	node_start();

	live = make_dialog(0xaaaa000000000001ULL, "a", "n1");
	gone = make_dialog(0xaaaa000000000002ULL, "a", "n1");
	ck_assert_int_eq(dialog_insert(live), 0);
	ck_assert_int_eq(dialog_insert(gone), 0);
	dialog_changed(live, DIALOG_EV_CONFIRMED);
	dialog_changed(gone, DIALOG_EV_CONFIRMED);
	the_did = gone->did;
	ck_assert(run_until(key_exists, 2000));

	/* a replica of n2's, which will have ended while we were away */
	peer = make_dialog(0xbbbb000000000001ULL, "b", "n2");
	peer->version = 1;
	peer_publish(peer, "confirmed", 0);
	ck_assert(run_until(peer_applied, 2000));

	redis_stop();
	ck_assert(run_until(redis_down, 5000));

	/* calls go on: change one, end one, start one */
	set_str(&live->to_tag, "changed");
	dialog_changed(live, DIALOG_EV_UPDATED);
	dialog_end(gone);
	born = make_dialog(0xaaaa000000000003ULL, "a", "n1");
	ck_assert_int_eq(dialog_insert(born), 0);
	dialog_changed(born, DIALOG_EV_CREATED);
	ck_assert_int_eq(repl_counter("pending_resnapshot"), 2);
	ck_assert_int_eq(repl_counter("pending_endings"), 1);
	ck_assert(!cluster_synced());

	/* a new, empty Redis */
	redis_start();
	ck_assert(run_until(synced, 8000));

	/* the tag is restored, ours are written again, the replica swept */
	cmd_str(v, sizeof(v), "HGET t:shtags a");
	ck_assert_str_eq(v, "1 n1");
	ck_assert(shtag_is_active("a"));
	ck_assert_uint_eq(snapshot_ver(live->did), live->version);
	ck_assert_int_eq(cmd_int("EXISTS t:dlg:%016llx",
				 (unsigned long long)born->did), 1);
	ck_assert_int_eq(cmd_int("EXISTS t:dlg:%016llx",
				 (unsigned long long)gone->did), 0);
	ck_assert_ptr_null(dialog_lookup(peer->did));
	ck_assert_int_eq(repl_counter("pending_endings"), 0);
	ck_assert_int_eq(repl_counter("pending_resnapshot"), 0);

	mem_deref(live);
	mem_deref(gone);
	mem_deref(born);
	peer = mem_deref(peer);
}
END_TEST


START_TEST(t_claim_respects_live_holder)
{
	cmd_ok("HSET t:shtags a %s", "5 n2");
	cmd_ok("SET t:node:n2 x PX 60000");

	ck_assert_int_eq(cluster_init(&cfg), 0);
	ck_assert_int_eq(repl_init(&cfg), 0);
	ck_assert(run_until(synced, 5000));
	run_for(300);

	ck_assert(!shtag_is_active("a"));
	ck_assert_str_eq(shtag_holder("a"), "n2");
	ck_assert_uint_eq(shtag_epoch("a"), 5);

	/* n2 is gone: an explicit activation takes it */
	cmd_ok("DEL t:node:n2");
	race_done = false;
	ck_assert_int_eq(shtag_activate("a", race_result, NULL), 0);
	ck_assert(run_until(synced_active_a, 2000));
	ck_assert_int_eq(race_err, 0);
	ck_assert_uint_eq(shtag_epoch("a"), 6);
}
END_TEST


static bool b_released(void)
{
	return !str_cmp(shtag_holder("b"), "");
}


START_TEST(t_restart_takes_back_own)
{
	const struct dialog *d;
	char v[64];

	/* a previous run of n1 held both tags and served one call */
	cmd_ok("HSET t:shtags a %s b %s", "4 n1", "3 n1");
	peer = make_dialog(0xcccc000000000001ULL, "a", "n1");
	peer->version = 7;
	peer_snapshot(peer, 4);

	node_start();
	ck_assert(run_until(b_released, 2000));

	cmd_str(v, sizeof(v), "HGET t:shtags a");
	ck_assert_str_eq(v, "5 n1");
	cmd_str(v, sizeof(v), "HGET t:shtags b");
	ck_assert_str_eq(v, "4 ");

	d = dialog_lookup(peer->did);
	ck_assert_ptr_nonnull(d);
	ck_assert(!d->replica);
	ck_assert_str_eq(d->owner, "n1");
	ck_assert_uint_gt(d->version, 7);
	ck_assert_int_eq(repl_serve_rule(d, NULL), REPL_SERVE);

	peer = mem_deref(peer);
}
END_TEST


START_TEST(t_loads_snapshots)
{
	struct dialog *p[50];
	uint32_t n = 0;

	for (unsigned i = 0; i < 50; i++) {
		p[i] = make_dialog(0xdddd000000000000ULL + i, "b", "n2");
		p[i]->version = 1 + i;
		peer_snapshot(p[i], 0);
	}

	node_start();

	for (unsigned i = 0; i < 50; i++) {
		const struct dialog *d = dialog_lookup(p[i]->did);

		ck_assert_ptr_nonnull(d);
		ck_assert(d->replica);
		ck_assert(dialog_equal(d, p[i]));
		++n;
		mem_deref(p[i]);
	}
	ck_assert_uint_eq(n, 50);
	ck_assert_int_eq(repl_counter("snapshots_loaded"), 50);
}
END_TEST


static Suite *repl_suite(void)
{
	Suite *s = suite_create("repl");
	TCase *tc = tcase_create("redis");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, t_start_claims_and_syncs);
	tcase_add_test(tc, t_replicates_changes);
	tcase_add_test(tc, t_applies_peer_newer_only);
	tcase_add_test(tc, t_drops_forged);
	tcase_add_test(tc, t_steps_down_and_serve_rule);
	tcase_add_test(tc, t_activate_race);
	tcase_add_test(tc, t_redis_restart);
	tcase_add_test(tc, t_claim_respects_live_holder);
	tcase_add_test(tc, t_restart_takes_back_own);
	tcase_add_test(tc, t_loads_snapshots);
	suite_add_tcase(s, tc);

	return s;
}


int main(void)
{
	const char *p = getenv("REHOME_TEST_REDIS_PORT");
	SRunner *sr;
	int failed;

	if (p)
		port = (uint16_t)atoi(p);
	while (!port_free(port) && port < 27149)
		++port;

	if (libre_init())
		return EXIT_FAILURE;

	log_set_level(getenv("REHOME_TEST_DEBUG") ? LOG_DEBUG : LOG_WARN);
	sr = srunner_create(repl_suite());
	/* one process: the tests own a redis-server each, stopped by pid */
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	libre_close();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
