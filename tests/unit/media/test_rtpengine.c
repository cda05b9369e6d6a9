/**
 * @file test_rtpengine.c  The media module against a real rtpengine
 *
 * Starts rtpengine (Debian's rtpengine-daemon) in userspace mode on
 * 127.0.0.1, on ports drawn from REHOME_TEST_PORTS: its ng and CLI ports
 * and a small media port range. It runs in the foreground as our child,
 * and is stopped by its pid at the end (SIGTERM, then SIGKILL); it drops
 * a deleted call at once (its default keeps it 30 s). Its log
 * goes to a temporary file, kept and named when a test fails. Without
 * rtpengine installed the test fails: scripts/install-deps.sh installs it,
 * and a skipped test must never count as passed.
 *
 * The tests drive what the proxy will: a relay set that sees the relay up,
 * down while the process is stopped (SIGSTOP) and up again, then a call's
 * offer and answer with real SDPs from addresses rtpengine has never
 * seen, whose rewritten SDPs must point at the relay, a query showing
 * both tags, and a delete after which rtpengine no longer knows the call.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <check.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "ng.h"
#include "mrelay.h"
#include "media.h"
#include "loop.h"

enum { MEDIA_PORTS = 20, BLOCK = 4 + MEDIA_PORTS, WAIT_MS = 5000 };

#define CALLER_SDP \
	"v=0\r\n" \
	"o=caller 1 1 IN IP4 192.0.2.10\r\n" \
	"s=-\r\n" \
	"c=IN IP4 192.0.2.10\r\n" \
	"t=0 0\r\n" \
	"m=audio 40000 RTP/AVP 0 8\r\n" \
	"a=rtpmap:0 PCMU/8000\r\n" \
	"a=rtpmap:8 PCMA/8000\r\n"

#define CALLEE_SDP \
	"v=0\r\n" \
	"o=callee 7 7 IN IP4 192.0.2.20\r\n" \
	"s=-\r\n" \
	"c=IN IP4 192.0.2.20\r\n" \
	"t=0 0\r\n" \
	"m=audio 40002 RTP/AVP 0\r\n" \
	"a=rtpmap:0 PCMU/8000\r\n"

static const struct mrelay_opts fast = {
	.ping_interval_ms = 100,
	.ng = {.tries = 2, .timeout_ms = 100},
};

static struct {
	pid_t pid;
	uint16_t ng, cli, port_min, port_max;
	struct sa addr;          /* its ng address */
	char log[64];
} rtp;


/* ---- rtpengine --------------------------------------------------------- */


static bool bindable(uint16_t port, int type)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, type, 0);
	bool ok;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = fd >= 0 && !bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	if (fd >= 0)
		close(fd);

	return ok;
}


/* BLOCK consecutive free ports in REHOME_TEST_PORTS (lo-hi) */
static uint16_t free_block(void)
{
	const char *range = getenv("REHOME_TEST_PORTS");
	unsigned lo = 26000, hi = 26999;

	if (range && sscanf(range, "%u-%u", &lo, &hi) != 2)
		ck_abort_msg("REHOME_TEST_PORTS: '%s' is not LO-HI", range);
	ck_assert_uint_gt(hi, lo + BLOCK);
	ck_assert_uint_le(hi, 65535);

	for (unsigned tries = 0; tries < 100; tries++) {
		uint16_t p = lo + rand_u16() % (hi - lo - BLOCK);
		bool ok = bindable(p + 1, SOCK_STREAM);

		for (unsigned i = 0; i < BLOCK && ok; i++)
			ok = bindable(p + i, SOCK_DGRAM);
		if (ok)
			return p;
	}

	ck_abort_msg("no %u free ports in %u-%u", BLOCK, lo, hi);
	return 0;
}


static void spawn(char *const argv[], int logfd)
{
	rtp.pid = fork();
	ck_assert_int_ge(rtp.pid, 0);
	if (rtp.pid)
		return;

	(void)dup2(logfd, STDOUT_FILENO);
	(void)dup2(logfd, STDERR_FILENO);
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	execvp(argv[0], argv);
	_exit(127);
}


static void rtpengine_start(void)
{
	char ng[32], cli[32], pmin[32], pmax[32];
	char *argv[] = {
		"rtpengine", "--config-file=none", "--interface=127.0.0.1",
		ng, cli, "--foreground", "--table=-1", "--no-fallback",
		"--log-stderr", "--delete-delay=0", pmin, pmax, NULL
	};
	int logfd;

	rtp.ng = free_block();
	rtp.cli = rtp.ng + 1;
	rtp.port_min = rtp.ng + 4;
	rtp.port_max = rtp.ng + BLOCK - 1;
	(void)re_snprintf(ng, sizeof(ng), "--listen-ng=127.0.0.1:%u", rtp.ng);
	(void)re_snprintf(cli, sizeof(cli), "--listen-cli=127.0.0.1:%u",
			  rtp.cli);
	(void)re_snprintf(pmin, sizeof(pmin), "--port-min=%u", rtp.port_min);
	(void)re_snprintf(pmax, sizeof(pmax), "--port-max=%u", rtp.port_max);
	ck_assert_int_eq(sa_set_str(&rtp.addr, "127.0.0.1", rtp.ng), 0);

	str_ncpy(rtp.log, "/tmp/test_rtpengine_XXXXXX", sizeof(rtp.log));
	logfd = mkstemp(rtp.log);
	ck_assert_int_ge(logfd, 0);
	spawn(argv, logfd);
	close(logfd);
}


static void rtpengine_stop(void)
{
	if (rtp.pid <= 0)
		return;

	(void)kill(rtp.pid, SIGCONT);
	(void)kill(rtp.pid, SIGTERM);
	for (int i = 0; i < 300; i++) {
		if (waitpid(rtp.pid, NULL, WNOHANG) == rtp.pid) {
			rtp.pid = 0;
			return;
		}
		usleep(10000);
	}

	(void)kill(rtp.pid, SIGKILL);
	(void)waitpid(rtp.pid, NULL, 0);
	rtp.pid = 0;
}


/* ---- results ----------------------------------------------------------- */


struct result {
	bool done;
	int err;
	struct odict *reply;     /* ng replies */
	char sdp[1024];          /* media replies */
};


static void ng_handler(int err, const struct odict *reply, void *arg)
{
	struct result *r = arg;

	r->done = true;
	r->err = err;
	r->reply = mem_ref((struct odict *)reply);
}


static void media_handler(int err, const char *sdp, void *arg)
{
	struct result *r = arg;

	r->done = true;
	r->err = err;
	str_ncpy(r->sdp, sdp, sizeof(r->sdp));
}


static bool is_done(void *arg)
{
	return ((struct result *)arg)->done;
}


static void wait_done(struct result *r)
{
	ck_assert_msg(run_until(is_done, r, WAIT_MS), "no result");
}


/* The SDP's connection address and its first audio port */
static void sdp_media(const char *sdp, struct pl *addr, uint32_t *port)
{
	struct pl p;

	ck_assert_msg(!re_regex(sdp, str_len(sdp), "c=IN IP4 [^\r\n]+", addr),
		      "no c= in %s", sdp);
	ck_assert_msg(!re_regex(sdp, str_len(sdp), "m=audio [0-9]+ ", &p),
		      "no m=audio in %s", sdp);
	*port = pl_u32(&p);
}


/* Rewritten to the relay: its address, a port of its range (the o= line
 * is the endpoint's still) */
static uint32_t assert_relayed(const char *sdp, const char *orig_ip)
{
	char orig_c[64];
	struct pl addr;
	uint32_t port;

	sdp_media(sdp, &addr, &port);
	ck_assert_msg(!pl_strcmp(&addr, "127.0.0.1"), "c= %.*s, not the relay",
		      (int)addr.l, addr.p);
	(void)re_snprintf(orig_c, sizeof(orig_c), "c=IN IP4 %s", orig_ip);
	ck_assert_ptr_null(strstr(sdp, orig_c));
	ck_assert_uint_ge(port, rtp.port_min);
	ck_assert_uint_le(port, rtp.port_max);

	return port;
}


/* ---- tests ------------------------------------------------------------- */


START_TEST(test_ping)
{
	struct ng_client *ng = NULL;
	struct result r = {0};

	ck_assert_int_eq(ng_client_alloc(&ng, &rtp.addr, NULL), 0);
	ck_assert_int_eq(ng_ping(NULL, ng, ng_handler, &r), 0);
	wait_done(&r);
	ck_assert_int_eq(r.err, 0);
	ck_assert_str_eq(odict_string(r.reply, "result"), "pong");
	ck_assert_uint_eq(ng_client_stats(ng)->garbled, 0);

	mem_deref(r.reply);
	mem_deref(ng);
}
END_TEST


static bool relay_up(void *arg)
{
	return mrelay_is_up(arg);
}


static bool relay_down(void *arg)
{
	return !mrelay_is_up(arg);
}


/* A set of this one relay; the relay, once it is up */
static struct mrelay *relay_start(struct mrelay_set **setp)
{
	struct conf_media_relay conf = {.addr = rtp.addr, .weight = 1};
	struct mrelay *relay;
	char name[64];

	ck_assert_int_eq(mrelay_set_alloc(setp, &conf, 1, &fast, NULL, NULL),
			 0);
	(void)re_snprintf(name, sizeof(name), "udp:127.0.0.1:%u", rtp.ng);
	relay = mrelay_find(*setp, name);
	ck_assert_ptr_nonnull(relay);
	ck_assert_msg(run_until(relay_up, relay, WAIT_MS), "not up");

	return relay;
}


/* Up, down while the process is stopped, up again once it runs */
START_TEST(test_relay_health)
{
	struct mrelay_set *set = NULL;
	struct odict *status = NULL;
	struct mrelay *relay;

	relay = relay_start(&set);
	ck_assert_ptr_eq(mrelay_choose(set), relay);

	ck_assert_int_eq(kill(rtp.pid, SIGSTOP), 0);
	ck_assert_msg(run_until(relay_down, relay, WAIT_MS), "not down");
	ck_assert_ptr_null(mrelay_choose(set));

	ck_assert_int_eq(kill(rtp.pid, SIGCONT), 0);
	ck_assert_msg(run_until(relay_up, relay, WAIT_MS), "not up again");
	ck_assert_ptr_eq(mrelay_choose(set), relay);

	ck_assert_int_eq(mrelay_status(&status, set), 0);
	ck_assert_ptr_nonnull(odict_lookup(status, "relays"));

	mem_deref(status);
	mem_deref(set);
}
END_TEST


static void query(struct ng_client *ng, const char *callid, struct result *r)
{
	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(ng_query(NULL, ng, &(struct ng_call){
				  .callid = callid}, ng_handler, r), 0);
	wait_done(r);
}


/* A call through the relay: offer, answer, query, delete */
START_TEST(test_call)
{
	const struct odict_entry *tags;
	struct mrelay_set *set = NULL;
	struct media_call *mc = NULL;
	struct ng_client *ng = NULL;
	struct result r = {0};
	uint32_t offer_port, answer_port;
	char callid[32];

	(void)re_snprintf(callid, sizeof(callid), "test-%08x", rand_u32());
	ck_assert_int_eq(media_call_alloc(&mc, relay_start(&set), callid), 0);

	ck_assert_int_eq(media_offer(mc, "ft", NULL, CALLER_SDP,
				     media_handler, &r), 0);
	wait_done(&r);
	ck_assert_int_eq(r.err, 0);
	offer_port = assert_relayed(r.sdp, "192.0.2.10");

	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(media_answer(mc, "ft", "tt", CALLEE_SDP,
				      media_handler, &r), 0);
	wait_done(&r);
	ck_assert_int_eq(r.err, 0);
	answer_port = assert_relayed(r.sdp, "192.0.2.20");
	ck_assert_uint_ne(offer_port, answer_port);

	/* rtpengine knows the call and both its tags */
	ck_assert_int_eq(ng_client_alloc(&ng, &rtp.addr, NULL), 0);
	query(ng, callid, &r);
	ck_assert_int_eq(r.err, 0);
	ck_assert_str_eq(odict_string(r.reply, "result"), "ok");
	tags = odict_get_type(r.reply, ODICT_OBJECT, "tags");
	ck_assert_ptr_nonnull(tags);
	ck_assert_ptr_nonnull(odict_lookup(tags->u.odict, "ft"));
	ck_assert_ptr_nonnull(odict_lookup(tags->u.odict, "tt"));
	r.reply = mem_deref(r.reply);

	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(media_delete(mc, media_handler, &r), 0);
	wait_done(&r);
	ck_assert_int_eq(r.err, 0);

	query(ng, callid, &r);
	ck_assert_int_eq(r.err, EPROTO);
	ck_assert_str_eq(odict_string(r.reply, "error-reason"),
			 "Unknown call-id");
	mem_deref(r.reply);

	/* what rtpengine refuses comes back as EPROTO, and is no SDP */
	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(media_offer(mc, "ft", NULL, "not an sdp",
				     media_handler, &r), 0);
	wait_done(&r);
	ck_assert_int_eq(r.err, EPROTO);
	ck_assert_str_eq(r.sdp, "");
	ck_assert_uint_eq(ng_client_stats(ng)->garbled, 0);

	mem_deref(mc);
	mem_deref(ng);
	mem_deref(set);
}
END_TEST


/* rtpengine answers once it is ready: ping it, 5 s at most */
static void wait_ready(void)
{
	struct ng_client *ng = NULL;
	struct result r = {0};

	ck_assert_int_eq(ng_client_alloc(&ng, &rtp.addr, &(struct ng_conf){
				.tries = 50, .timeout_ms = 100}), 0);
	ck_assert_int_eq(ng_ping(NULL, ng, ng_handler, &r), 0);
	ck_assert_msg(run_until(is_done, &r, WAIT_MS) && !r.err,
		      "rtpengine did not answer on %u (log: %s)", rtp.ng,
		      rtp.log);

	mem_deref(r.reply);
	mem_deref(ng);
}


static void setup(void)
{
	rtpengine_start();
	wait_ready();
}


static Suite *rtpengine_suite(void)
{
	Suite *s = suite_create("rtpengine");
	TCase *tc = tcase_create("core");

	/* the tests share one rtpengine, started once */
	tcase_add_unchecked_fixture(tc, setup, rtpengine_stop);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_ping);
	tcase_add_test(tc, test_relay_health);
	tcase_add_test(tc, test_call);
	suite_add_tcase(s, tc);

	return s;
}


static bool installed(const char *prog)
{
	char cmd[128];

	(void)re_snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null", prog);

	return system(cmd) == 0;
}


int main(void)
{
	SRunner *sr;
	int failed;

	if (!installed("rtpengine")) {
		fprintf(stderr, "rtpengine is not installed "
			"(scripts/install-deps.sh installs it)\n");
		return EXIT_FAILURE;
	}

	if (libre_init())
		return EXIT_FAILURE;

	log_set_level(getenv("REHOME_TEST_DEBUG") ? LOG_DEBUG : LOG_ERROR);
	sr = srunner_create(rtpengine_suite());
	/* one process: rtpengine is our child, stopped by its pid */
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	rtpengine_stop();
	if (failed)
		fprintf(stderr, "rtpengine's log: %s\n", rtp.log);
	else if (rtp.log[0])
		unlink(rtp.log);

	libre_close();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
