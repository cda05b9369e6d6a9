/**
 * @file repl_peer.c  Fixture of the repl tests: n1 here, n2 played by the test
 *
 * One node (n1) runs in this process: Redis client, heartbeats, sharing
 * tags and replication, on the real main loop. The test plays the other
 * node (n2) through a plain blocking hiredis connection: it writes tag
 * states, snapshots and signed messages exactly as a node would, and reads
 * back what n1 wrote. Each test starts its own redis-server on 127.0.0.1,
 * on a free port drawn from REHOME_TEST_PORTS (or REHOME_TEST_REDIS_PORT)
 * so that the repl programs, run in parallel, do not meet, and stops it by
 * pid. The tests run in one process (CK_NOFORK), one after the other.
 */
#include <signal.h>
#include <stdio.h>
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
#include "repl_peer.h"

#define SECRET "s3cret"

uint16_t fixture_port;
struct rh_conf fixture_cfg;
uint64_t fixture_did;
struct dialog *peer_dlg;
static pid_t redis_pid;
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


/** A free port drawn at random from REHOME_TEST_PORTS (lo-hi), as the
 * integration harness does: the repl programs run at the same time */
static uint16_t port_pick(void)
{
	const char *fixed = getenv("REHOME_TEST_REDIS_PORT");
	const char *range = getenv("REHOME_TEST_PORTS");
	unsigned lo = 26000, hi = 26999;

	if (fixed)
		return (uint16_t)atoi(fixed);
	if (range && sscanf(range, "%u-%u", &lo, &hi) != 2)
		ck_abort_msg("REHOME_TEST_PORTS: '%s' is not LO-HI", range);
	ck_assert_uint_gt(hi, lo);
	ck_assert_uint_le(hi, 65535);

	for (unsigned tries = 0; tries < 100; tries++) {
		uint16_t p = lo + rand_u16() % (hi - lo + 1);

		if (port_free(p))
			return p;
	}

	ck_abort_msg("no free port in %u-%u", lo, hi);
	return 0;
}


/** Start redis-server on `fixture_port` and make sure it is ours (its pid). */
void fixture_redis_start(void)
{
	char p[8], pid[32];
	redisReply *r;

	ck_assert_msg(port_free(fixture_port), "port %u is taken",
		      fixture_port);
	re_snprintf(p, sizeof(p), "%u", fixture_port);
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
		rc = redisConnect("127.0.0.1", fixture_port);
		if (rc && rc->err) {
			redisFree(rc);
			rc = NULL;
			usleep(10000);
		}
	}
	ck_assert_msg(rc != NULL, "redis-server did not start on %u",
		      fixture_port);

	r = redisCommand(rc, "INFO server");
	ck_assert(r && r->type == REDIS_REPLY_STRING);
	re_snprintf(pid, sizeof(pid), "process_id:%d\r", (int)redis_pid);
	ck_assert_msg(strstr(r->str, pid), "port %u: not our redis",
		      fixture_port);
	freeReplyObject(r);
}


void fixture_redis_stop(void)
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


void peer_cmd_ok(const char *fmt, ...)
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
void peer_cmd_str(char *buf, size_t sz, const char *fmt, ...)
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


long long peer_cmd_int(const char *fmt, ...)
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


/** The version of a snapshot, "<version> <message>" (repl_publish.c) */
uint64_t peer_snapshot_ver(uint64_t did)
{
	char v[32];

	peer_cmd_str(v, sizeof(v), "GETRANGE t:dlg:%016llx 0 30",
		     (unsigned long long)did);
	return strtoull(v, NULL, 10);
}


/** What a snapshot holds after its version, "" when there is none */
void peer_snapshot_rec(char *buf, size_t sz, uint64_t did)
{
	char *m = mem_zalloc(sz, NULL);
	const char *sp;

	ck_assert_ptr_nonnull(m);
	peer_cmd_str(m, sz, "GET t:dlg:%016llx", (unsigned long long)did);
	sp = strchr(m, ' ');
	str_ncpy(buf, sp ? sp + 1 : "", sz);
	mem_deref(m);
}


/* ---- the main loop --------------------------------------------------- */


static fixture_cond_h *until;
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


bool fixture_run_until(fixture_cond_h *cond, uint32_t ms)
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


void fixture_run_for(uint32_t ms)
{
	(void)fixture_run_until(never, ms);
}


/* ---- what n2 would send ---------------------------------------------- */


/** "<seal> <stamp> <body>" as cluster_msg.c writes it, from `node` */
static char *seal(const char *node, const char *body)
{
	static const uint64_t boot = 0x5eed0000000000b2ULL;
	static uint64_t seq;
	struct hmac *h = NULL;
	struct timeval tv;
	uint8_t md[32];
	char *stamped = NULL, *msg = NULL;

	gettimeofday(&tv, NULL);
	ck_assert_int_eq(re_sdprintf(&stamped, "%016llx %llu %llu %s %s",
				     (unsigned long long)boot,
				     (unsigned long long)++seq,
				     (unsigned long long)tv.tv_sec * 1000 +
				     (unsigned long long)tv.tv_usec / 1000,
				     node, body), 0);
	ck_assert_int_eq(hmac_create(&h, HMAC_HASH_SHA256,
				     (const uint8_t *)SECRET, strlen(SECRET)),
			 0);
	ck_assert_int_eq(hmac_digest(h, md, sizeof(md),
				     (const uint8_t *)stamped,
				     strlen(stamped)), 0);
	ck_assert_int_eq(re_sdprintf(&msg, "%w %s", md, sizeof(md), stamped),
			 0);
	mem_deref(stamped);
	mem_deref(h);

	return msg;
}


static void publish(const char *chan, const char *body)
{
	char *msg = seal("n2", body);

	peer_cmd_ok("PUBLISH t:%s %s", chan, msg);
	mem_deref(msg);
}


void fixture_set_str(char **dst, const char *s)
{
	mem_deref(*dst);
	*dst = NULL;
	ck_assert_int_eq(str_dup(dst, s), 0);
}


void fixture_set_id(struct dialog *dlg, enum dialog_id id, const char *s)
{
	struct pl pl;

	pl_set_str(&pl, s);
	ck_assert_int_eq(dialog_set_id(dlg, id, &pl), 0);
}


struct dialog *fixture_dialog(uint64_t did, const char *tag,
			      const char *owner)
{
	struct dialog *dlg = NULL;

	ck_assert_int_eq(dialog_alloc(&dlg, did), 0);
	fixture_set_id(dlg, DIALOG_ID_CALLID, "call-1@127.0.0.1");
	fixture_set_id(dlg, DIALOG_ID_FROM, "<sip:alice@127.0.0.1>;tag=a1");
	fixture_set_id(dlg, DIALOG_ID_TO, "<sip:bob@127.0.0.1>");
	fixture_set_id(dlg, DIALOG_ID_TO_TAG, "b2");
	ck_assert_int_eq(dialog_atom_str(&dlg->shtag, tag), 0);
	ck_assert_int_eq(dialog_atom_str(&dlg->owner, owner), 0);
	fixture_set_id(dlg, DIALOG_ID_CALLER_TARGET,
			"sip:alice@127.0.0.1:27260");
	fixture_set_id(dlg, DIALOG_ID_CALLEE_TARGET,
			"sip:bob@127.0.0.1:27261");
	fixture_set_str(&dlg->leg[LEG_CALLER].sdp_in, "v=0\r\no=- 1 1 IN IP4 "
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
char *peer_msg(const struct dialog *dlg, const char *ev, uint64_t epoch)
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
	msg = seal(dlg->owner, body);
	mem_deref(body);

	return msg;
}


void peer_publish(const struct dialog *dlg, const char *ev, uint64_t epoch)
{
	char *msg = peer_msg(dlg, ev, epoch);

	peer_cmd_ok("PUBLISH t:repl:%s %s", dlg->shtag, msg);
	mem_deref(msg);
}


/**
 * n2's record of dlg, "<seal>\n<dialog>", the seal the HMAC of the newline
 * and the dialog in base64 without its padding (cluster_msg.c)
 */
char *peer_record(const struct dialog *dlg)
{
	struct hmac *h = NULL;
	uint8_t md[32];
	char b64[44], *body = NULL, *rec = NULL;
	size_t n = sizeof(b64);

	ck_assert_int_eq(re_sdprintf(&body, "\n%H", dialog_encode, dlg), 0);
	ck_assert_int_eq(hmac_create(&h, HMAC_HASH_SHA256,
				     (const uint8_t *)SECRET, strlen(SECRET)),
			 0);
	ck_assert_int_eq(hmac_digest(h, md, sizeof(md),
				     (const uint8_t *)body, strlen(body)), 0);
	ck_assert_int_eq(base64_encode(md, sizeof(md), b64, &n), 0);
	ck_assert_uint_eq(n, 44);
	ck_assert_int_eq(b64[43], '=');
	ck_assert_int_eq(re_sdprintf(&rec, "%b%s", b64, (size_t)43, body), 0);
	mem_deref(body);
	mem_deref(h);

	return rec;
}


/** A snapshot as n1 writes it: "<version> <record>" */
void peer_snapshot(const struct dialog *dlg)
{
	char *rec = peer_record(dlg), *val = NULL;

	ck_assert_int_eq(re_sdprintf(&val, "%llu %s",
				     (unsigned long long)dlg->version, rec), 0);
	peer_cmd_ok("SET t:dlg:%016llx %s", (unsigned long long)dlg->did,
		    val);
	mem_deref(val);
	mem_deref(rec);
}


/** As the release before wrote it: "<version> <message>" */
void peer_snapshot_message(const struct dialog *dlg, uint64_t epoch)
{
	char *msg = peer_msg(dlg, "updated", epoch);

	char *val = NULL;

	ck_assert_int_eq(re_sdprintf(&val, "%llu %s",
				     (unsigned long long)dlg->version, msg), 0);
	peer_cmd_ok("SET t:dlg:%016llx %s", (unsigned long long)dlg->did,
		    val);
	mem_deref(val);
	mem_deref(msg);
}


/** As the releases before dialog format 5 wrote it: a hash {v, m} */
void peer_snapshot_hash(const struct dialog *dlg, uint64_t epoch)
{
	char *msg = peer_msg(dlg, "updated", epoch);

	peer_cmd_ok("HSET t:dlg:%016llx v %llu m %s",
		    (unsigned long long)dlg->did,
		    (unsigned long long)dlg->version, msg);
	mem_deref(msg);
}


void peer_heartbeat(void)
{
	publish("nodes", "{\"node\":\"n2\",\"state\":\"up\",\"synced\":true,"
		"\"ts\":1,\"listeners\":[{\"tag\":\"pub\",\"tp\":\"UDP\","
		"\"addr\":\"127.0.0.1:27250\"}]}");
}


/** n2 takes tag `name` from epoch `want`, as shtag.c's script would */
bool peer_take(const char *name, uint64_t want)
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
	msg = seal("n2", body);
	won = peer_cmd_int("EVAL %s 1 t:shtags %s %llu %s", lua, name,
		      (unsigned long long)want, msg);
	mem_deref(msg);
	mem_deref(body);

	return won == 1;
}


/* ---- looking at n1 --------------------------------------------------- */


int64_t fixture_repl_counter(const char *name)
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


bool fixture_synced(void)
{
	return cluster_synced();
}


bool fixture_synced_active_a(void)
{
	return cluster_synced() && shtag_is_active("a");
}


void fixture_node_start(void)
{
	ck_assert_int_eq(cluster_init(&fixture_cfg), 0);
	ck_assert_int_eq(repl_init(&fixture_cfg), 0);
	ck_assert(fixture_run_until(fixture_synced_active_a, 5000));
}


/* ---- fixture --------------------------------------------------------- */


void fixture_setup(void)
{
	struct rh_conf *cfg = &fixture_cfg;

	fixture_port = port_pick();
	conf_defaults(cfg);
	str_ncpy(cfg->node_id, "n1", sizeof(cfg->node_id));
	str_ncpy(cfg->cluster, "t", sizeof(cfg->cluster));
	str_ncpy(cfg->keyns, cfg->cluster, sizeof(cfg->keyns));
	str_ncpy(cfg->repl_secret, SECRET, sizeof(cfg->repl_secret));
	str_ncpy(cfg->redis_host, "127.0.0.1", sizeof(cfg->redis_host));
	cfg->redis_port = fixture_port;
	cfg->has_redis = true;
	/* long enough for a starved test process (CI, sanitizers), short enough
	 * for the tests that wait for n2 to be declared dead */
	cfg->node_timeout = 1000;
	cfg->listenc = 1;
	cfg->listen[0].tp = SIP_TRANSP_UDP;
	(void)sa_set_str(&cfg->listen[0].addr, "127.0.0.1", 27201);
	str_ncpy(cfg->listen[0].tag, "pub", sizeof(cfg->listen[0].tag));
	cfg->shtagc = 2;
	str_ncpy(cfg->shtag[0].name, "a", sizeof(cfg->shtag[0].name));
	cfg->shtag[0].active = true;
	str_ncpy(cfg->shtag[1].name, "b", sizeof(cfg->shtag[1].name));
	cfg->shtag[1].active = false;

	fixture_redis_start();
	ck_assert_int_eq(uvre_init(), 0);
	ck_assert_int_eq(dialog_table_init(8), 0);
}


void fixture_teardown(void)
{
	repl_close();
	cluster_close();
	ctl_close();
	dialog_table_close();
	uvre_close();
	fixture_redis_stop();
}


/* ---- what n1 wrote --------------------------------------------------- */


bool fixture_key_exists(void)
{
	return peer_cmd_int("EXISTS t:dlg:%016llx",
			    (unsigned long long)fixture_did) == 1;
}


bool fixture_key_gone(void)
{
	return !fixture_key_exists();
}


/** n1 holds n2's peer_dlg, at its version */
bool peer_applied(void)
{
	const struct dialog *d = dialog_lookup(peer_dlg->did);

	return d && d->version == peer_dlg->version;
}


bool fixture_redis_down(void)
{
	return redis_state() == REDIS_ST_DOWN;
}



int fixture_main(Suite *suite)
{
	SRunner *sr;
	int failed;

	if (libre_init())
		return EXIT_FAILURE;

	log_set_level(getenv("REHOME_TEST_DEBUG") ? LOG_DEBUG : LOG_WARN);
	sr = srunner_create(suite);
	/* one process: the tests own a redis-server each, stopped by pid */
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	libre_close();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
