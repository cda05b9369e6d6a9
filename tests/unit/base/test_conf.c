/**
 * @file test_conf.c  Unit tests of the configuration file parser
 *
 * Good files are checked field by field; bad ones through a table of
 * (text, line, words of the message), so that every kind of mistake is
 * proven to name the right line and say something an operator can act on.
 * The shipped conf/ files are loaded from the source tree (REHOME_SRC).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>
#include <check.h>
#include <re.h>
#include "log.h"
#include "conf.h"

#define LISTEN "listen udp:127.0.0.1:5060 tag=public\n"

static struct rh_conf cfg;
static char errbuf[512];


static int load(const char *text)
{
	return conf_load_buf(&cfg, "t.conf", text, strlen(text),
			     errbuf, sizeof(errbuf));
}


static const char *src_path(char *buf, size_t sz, const char *rel)
{
	const char *root = getenv("REHOME_SRC");

	(void)re_snprintf(buf, sz, "%s/%s", root ? root : ".", rel);
	return buf;
}


static void assert_sa(const struct sa *sa, const char *ip, uint16_t port)
{
	struct sa want;

	ck_assert_int_eq(sa_set_str(&want, ip, port), 0);
	ck_assert_msg(sa_cmp(sa, &want, SA_ALL), "address %s:%u", ip, port);
}


START_TEST(test_defaults)
{
	char host[64] = "";

	conf_defaults(&cfg);
	(void)gethostname(host, sizeof(host) - 1);

	ck_assert_str_eq(cfg.node_id, host);
	ck_assert_uint_eq(cfg.listenc, 0);
	ck_assert(!cfg.has_upstream);
	ck_assert_uint_eq(cfg.shtagc, 0);
	ck_assert_str_eq(cfg.default_shtag, "default");
	ck_assert(!cfg.has_redis);
	ck_assert_str_eq(cfg.cluster, "rehome");
	ck_assert_str_eq(cfg.repl_secret, "");
	ck_assert_str_eq(cfg.policy, "");
	assert_sa(&cfg.ctl_listen, "127.0.0.1", 8060);
	ck_assert_str_eq(cfg.ctl_token, "");
	ck_assert_uint_eq(cfg.dialog_timeout, 43200);
	ck_assert_uint_eq(cfg.ring_timeout, 180);
	ck_assert_uint_eq(cfg.udp_rcvbuf, 8 << 20);
	ck_assert_uint_eq(cfg.workers, 1);
	ck_assert_uint_eq(cfg.worker, 0);
	ck_assert_uint_eq(cfg.node_timeout, 1500);
	ck_assert_uint_eq(cfg.rehome_rate, 5000);
	ck_assert_int_eq(cfg.log_level, LOG_INFO);
	ck_assert_uint_eq(cfg.media_relayc, 0);
	ck_assert_int_eq(cfg.log_target, LOG_TARGET_STDERR);
}
END_TEST


START_TEST(test_minimal_keeps_defaults)
{
	ck_assert_int_eq(load(LISTEN), 0);
	ck_assert_str_eq(errbuf, "");
	ck_assert_str_eq(cfg.path, "t.conf");
	ck_assert_uint_eq(cfg.listenc, 1);
	ck_assert_str_eq(cfg.default_shtag, "default");
	ck_assert_str_eq(cfg.cluster, "rehome");
	ck_assert_uint_eq(cfg.dialog_timeout, 43200);
}
END_TEST


START_TEST(test_every_key)
{
	char policy[PATH_MAX], real[PATH_MAX], text[2048];

	/* any readable file will do as the policy */
	ck_assert_ptr_nonnull(realpath(src_path(policy, sizeof(policy),
						"meson.build"), real));

	(void)re_snprintf(text, sizeof(text),
		"node_id n-1.a_b\n"
		"listen udp:127.0.0.1:5070 tag=public\n"
		"listen tcp:127.0.0.1:5070 tag=public\n"
		"listen udp:[::1]:5071 tag=carrier\n"
		"upstream tcp:127.0.0.9:5080\n"
		"shtag alpha backup\n"
		"shtag beta active\n"
		"default_shtag beta\n"
		"redis localhost:6380\n"
		"cluster acme\n"
		"repl_secret s3#cret\n"
		"policy %s\n"
		"ctl_listen 0.0.0.0:9000\n"
		"ctl_token tok\n"
		"dialog_timeout 60\n"
		"ring_timeout 30\n"
		"udp_rcvbuf 0\n"
		"node_timeout 500\n"
		"rehome_rate 50\n"
		"log_level debug\n"
		"log_target syslog\n", real);

	ck_assert_msg(load(text) == 0, "%s", errbuf);

	ck_assert_str_eq(cfg.node_id, "n-1.a_b");
	ck_assert_uint_eq(cfg.listenc, 3);
	ck_assert_int_eq(cfg.listen[0].tp, SIP_TRANSP_UDP);
	assert_sa(&cfg.listen[0].addr, "127.0.0.1", 5070);
	ck_assert_str_eq(cfg.listen[0].tag, "public");
	ck_assert_int_eq(cfg.listen[1].tp, SIP_TRANSP_TCP);
	assert_sa(&cfg.listen[1].addr, "127.0.0.1", 5070);
	assert_sa(&cfg.listen[2].addr, "::1", 5071);
	ck_assert_str_eq(cfg.listen[2].tag, "carrier");
	ck_assert(cfg.has_upstream);
	ck_assert_int_eq(cfg.upstream_tp, SIP_TRANSP_TCP);
	assert_sa(&cfg.upstream, "127.0.0.9", 5080);
	ck_assert_uint_eq(cfg.shtagc, 2);
	ck_assert_str_eq(cfg.shtag[0].name, "alpha");
	ck_assert(!cfg.shtag[0].active);
	ck_assert_str_eq(cfg.shtag[1].name, "beta");
	ck_assert(cfg.shtag[1].active);
	ck_assert_str_eq(cfg.default_shtag, "beta");
	ck_assert(cfg.has_redis);
	ck_assert_str_eq(cfg.redis_host, "localhost");
	ck_assert_uint_eq(cfg.redis_port, 6380);
	ck_assert_str_eq(cfg.cluster, "acme");
	ck_assert_str_eq(cfg.repl_secret, "s3#cret");
	ck_assert_str_eq(cfg.policy, real);
	assert_sa(&cfg.ctl_listen, "0.0.0.0", 9000);
	ck_assert_str_eq(cfg.ctl_token, "tok");
	ck_assert_uint_eq(cfg.dialog_timeout, 60);
	ck_assert_uint_eq(cfg.ring_timeout, 30);
	ck_assert_uint_eq(cfg.udp_rcvbuf, 0);
	ck_assert_uint_eq(cfg.node_timeout, 500);
	ck_assert_uint_eq(cfg.rehome_rate, 50);
	ck_assert_int_eq(cfg.log_level, LOG_DEBUG);
	ck_assert_int_eq(cfg.log_target, LOG_TARGET_SYSLOG);
}
END_TEST


START_TEST(test_redis_ip)
{
	ck_assert_int_eq(load(LISTEN "redis [::1]:6379\n"), 0);
	ck_assert_str_eq(cfg.redis_host, "::1");
	ck_assert_uint_eq(cfg.redis_port, 6379);
}
END_TEST


START_TEST(test_upstream_uri)
{
	ck_assert_msg(load(LISTEN "upstream tcp:127.0.0.9:5080\n") == 0, "%s",
		      errbuf);
	ck_assert_str_eq(cfg.upstream_uri, "sip:127.0.0.9:5080;transport=tcp");

	ck_assert_msg(load(LISTEN "upstream sip:trunk.example.com\n") == 0,
		      "%s", errbuf);
	ck_assert_str_eq(cfg.upstream_uri, "sip:trunk.example.com");
	ck_assert(!sa_isset(&cfg.upstream, SA_ADDR));

	ck_assert_msg(load(LISTEN "upstream sip:127.0.0.9;transport=tls\n"
			   "listen tls:127.0.0.1:5061 tag=public\n"
			   "tls_cert /dev/null\n") == 0, "%s", errbuf);
	ck_assert_int_eq(cfg.upstream_tp, SIP_TRANSP_TLS);
	assert_sa(&cfg.upstream, "127.0.0.9", 5061);
}
END_TEST


START_TEST(test_dns_server)
{
	ck_assert_msg(load(LISTEN "dns_server 127.0.0.53:53\n"
			   "dns_server [::1]:5353\n") == 0, "%s", errbuf);
	ck_assert_uint_eq(cfg.dns_serverc, 2);
	assert_sa(&cfg.dns_server[1], "::1", 5353);
}
END_TEST


START_TEST(test_redis_sentinel)
{
	ck_assert_msg(load(LISTEN
			   "redis_sentinel 127.0.0.1:26379,[::1]:26380,"
			   "sentinel-3.example:26381\n"
			   "redis_master my-master\n"
			   "redis_user rehome\n"
			   "redis_password pa#ss\n"
			   "repl_secret new-key\n"
			   "repl_secret old-key\n") == 0, "%s", errbuf);

	ck_assert(cfg.has_redis);
	ck_assert_str_eq(cfg.redis_host, "");
	ck_assert_uint_eq(cfg.redis_sentinelc, 3);
	ck_assert_str_eq(cfg.redis_sentinel[0].host, "127.0.0.1");
	ck_assert_uint_eq(cfg.redis_sentinel[0].port, 26379);
	ck_assert_str_eq(cfg.redis_sentinel[1].host, "::1");
	ck_assert_uint_eq(cfg.redis_sentinel[1].port, 26380);
	ck_assert_str_eq(cfg.redis_sentinel[2].host, "sentinel-3.example");
	ck_assert_uint_eq(cfg.redis_sentinel[2].port, 26381);
	ck_assert_str_eq(cfg.redis_master, "my-master");
	ck_assert_str_eq(cfg.redis_user, "rehome");
	ck_assert_str_eq(cfg.redis_password, "pa#ss");
	ck_assert_str_eq(cfg.repl_secret, "new-key");
	ck_assert_str_eq(cfg.repl_secret2, "old-key");
}
END_TEST


START_TEST(test_redis_cluster)
{
	ck_assert_msg(load(LISTEN "redis_cluster 127.0.0.1:7000\n"
			   "cluster acme\n") == 0, "%s", errbuf);
	ck_assert(cfg.has_redis);
	ck_assert(cfg.redis_cluster);
	ck_assert_str_eq(cfg.redis_host, "127.0.0.1");
	ck_assert_uint_eq(cfg.redis_port, 7000);
	ck_assert_str_eq(cfg.keyns, "{acme}");

	ck_assert_msg(load(LISTEN "redis 127.0.0.1:6379\n") == 0, "%s",
		      errbuf);
	ck_assert(!cfg.redis_cluster);
	ck_assert_str_eq(cfg.keyns, "rehome");

	ck_assert_int_eq(load(LISTEN "redis 127.0.0.1:6379\n"
			      "redis_cluster 127.0.0.1:7000\n"), EINVAL);
	ck_assert_msg(strstr(errbuf, "t.conf:3: redis_cluster: give one of"),
		      "%s", errbuf);
}
END_TEST


START_TEST(test_redis_password_alone)
{
	ck_assert_msg(load(LISTEN "redis 127.0.0.1:6379\n"
			   "redis_password s3cret\n") == 0, "%s", errbuf);
	ck_assert_str_eq(cfg.redis_password, "s3cret");
	ck_assert_str_eq(cfg.redis_user, "");
	ck_assert_uint_eq(cfg.redis_sentinelc, 0);
	ck_assert_str_eq(cfg.repl_secret2, "");
}
END_TEST


START_TEST(test_media_relay)
{
	ck_assert_msg(load(LISTEN
			   "media_relay udp:127.0.0.1:2223\n"
			   "media_relay UDP:127.0.0.2:2223 weight=3\n"
			   "media_relay udp:[::1]:2223   weight=1000 # v6\n"
			   "media_relay udp:127.0.0.1:2224 weight=1\n") == 0,
		      "%s", errbuf);

	ck_assert_uint_eq(cfg.media_relayc, 4);
	assert_sa(&cfg.media_relay[0].addr, "127.0.0.1", 2223);
	ck_assert_uint_eq(cfg.media_relay[0].weight, 1);
	assert_sa(&cfg.media_relay[1].addr, "127.0.0.2", 2223);
	ck_assert_uint_eq(cfg.media_relay[1].weight, 3);
	assert_sa(&cfg.media_relay[2].addr, "::1", 2223);
	ck_assert_uint_eq(cfg.media_relay[2].weight, 1000);
	assert_sa(&cfg.media_relay[3].addr, "127.0.0.1", 2224);
	ck_assert_uint_eq(cfg.media_relay[3].weight, 1);
}
END_TEST


START_TEST(test_pass_header)
{
	ck_assert_msg(load(LISTEN "pass_header X-Account\n"
			   "pass_header User-Agent\n") == 0, "%s", errbuf);
	ck_assert_uint_eq(cfg.pass_headerc, 2);
	ck_assert_str_eq(cfg.pass_header[0], "X-Account");
	ck_assert_str_eq(cfg.pass_header[1], "User-Agent");

	ck_assert_int_eq(load(LISTEN "pass_header X:Y\n"), EINVAL);
	ck_assert_msg(strstr(errbuf, "t.conf:2: pass_header: 'X:Y' may only"),
		      "%s", errbuf);
}
END_TEST


START_TEST(test_too_many_media_relays)
{
	struct mbuf *mb = mbuf_alloc(1024);

	ck_assert_ptr_nonnull(mb);
	ck_assert_int_eq(mbuf_write_str(mb, LISTEN), 0);
	for (unsigned i = 0; i <= CONF_MAX_MEDIA_RELAYS; i++)
		ck_assert_int_eq(mbuf_printf(mb, "media_relay "
					     "udp:127.0.0.1:%u\n", 2000 + i), 0);

	ck_assert_int_eq(conf_load_buf(&cfg, "t.conf", (char *)mb->buf,
				       mb->end, errbuf, sizeof(errbuf)),
			 EINVAL);
	ck_assert_str_eq(errbuf, "t.conf:18: media_relay: too many relays "
			 "(at most 16)");
	mem_deref(mb);
}
END_TEST


START_TEST(test_default_shtag_is_first_shtag)
{
	ck_assert_int_eq(load(LISTEN "shtag one backup\nshtag two active\n"),
			 0);
	ck_assert_str_eq(cfg.default_shtag, "one");
}
END_TEST


START_TEST(test_comments_and_whitespace)
{
	static const char text[] =
		"# a comment\n"
		"\n"
		"   \t\n"
		"  node_id   spaced  \r\n"
		"\tlisten\tudp:127.0.0.1:5060   tag=public   # trailing\n"
		"#listen udp:127.0.0.1:5061 tag=x\n"
		"ctl_token a#b#c\n"
		"log_level warn";           /* no newline at the end */

	ck_assert_msg(load(text) == 0, "%s", errbuf);
	ck_assert_str_eq(cfg.node_id, "spaced");
	ck_assert_uint_eq(cfg.listenc, 1);
	ck_assert_str_eq(cfg.listen[0].tag, "public");
	ck_assert_str_eq(cfg.ctl_token, "a#b#c");
	ck_assert_int_eq(cfg.log_level, LOG_WARN);
}
END_TEST


/* A bad file: the line the message must name, and words it must contain */
static const struct bad {
	const char *text;
	unsigned line;
	const char *msg;
} badv[] = {
	{LISTEN "lisen udp:127.0.0.1:5061 tag=x\n", 2, "unknown key 'lisen'"},
	{LISTEN "Node_id x\n", 2, "unknown key 'Node_id'"},
	{"node_id a\n" LISTEN "node_id b\n", 3,
	 "node_id: given twice (first on line 1)"},
	{LISTEN "redis 127.0.0.1:6379\n\nredis 127.0.0.1:6380\n", 4,
	 "redis: given twice (first on line 2)"},
	{LISTEN "node_id\n", 2, "node_id: missing NAME"},
	{LISTEN "node_id a b\n", 2, "node_id: unexpected 'b'"},
	{LISTEN "node_id a/b\n", 2, "may only contain letters"},
	{LISTEN "node_id "
	 "a123456789b123456789c123456789d123456789e123456789f123456789g1234\n",
	 2, "too long (at most 63 characters)"},
	{"listen udp:127.0.0.1:5060\n", 1, "listen: missing tag=NAME"},
	{"listen udp:127.0.0.1:5060 public\n", 1,
	 "listen: expected tag=NAME, not 'public'"},
	{"listen udp:127.0.0.1:5060 tag=\n", 1, "the name is empty"},
	{"\n\nlisten tls:127.0.0.1:5061 tag=public\n", 3,
	 "listen: a TLS listener needs tls_cert FILE"},
	{"listen sctp:127.0.0.1:5060 tag=public\n", 1,
	 "unknown transport 'sctp' (udp, tcp, tls, ws or wss)"},
	{"listen 127.0.0.1 tag=public\n", 1, "is not PROTO:IP:PORT"},
	{"listen udp:127.0.0.1 tag=public\n", 1, "has no port"},
	{"listen udp:127.0.0.1:0 tag=public\n", 1, "bad port '0' (1-65535)"},
	{"listen udp:127.0.0.1:65536 tag=public\n", 1, "bad port '65536'"},
	{"listen udp:127.0.0.1:50x tag=public\n", 1, "bad port '50x'"},
	{"listen udp:127.0.0.256:5060 tag=public\n", 1,
	 "'127.0.0.256' is not an IP address"},
	{"listen udp:::1:5060 tag=public\n", 1, "IPv6 address in brackets"},
	{"listen udp:0.0.0.0:5060 tag=public\n", 1, "0.0.0.0 is a wildcard"},
	{LISTEN "listen tcp:127.0.0.1:5060 tag=public\n"
	 "listen udp:127.0.0.1:5060 tag=other\n", 3,
	 "listen: udp:127.0.0.1:5060 is already configured on line 1"},
	{"upstream tls:127.0.0.1:5061\n" LISTEN, 1,
	 "upstream: sending over TLS needs a tls listener"},
	{LISTEN "shtag a standby\n", 2,
	 "shtag: the state must be active or backup, not 'standby'"},
	{LISTEN "shtag a active\nshtag b backup\nshtag a backup\n", 4,
	 "shtag: 'a' is already declared on line 2"},
	{LISTEN "shtag a\n", 2, "shtag: missing active|backup"},
	{LISTEN "shtag a active\ndefault_shtag b\nshtag c backup\n", 3,
	 "default_shtag: 'b' is not declared by a shtag line"},
	{LISTEN "redis 127.0.0.1\n", 2, "redis: '127.0.0.1' has no port"},
	{LISTEN "redis :6379\n", 2, "has no address"},
	{LISTEN "redis red!s:6379\n", 2, "may only contain letters"},
	{LISTEN "redis 127.0.0.1:6379\nredis_sentinel 127.0.0.1:26379\n"
	 "redis_master m\n", 3, "redis_sentinel: give either redis or "
	 "redis_sentinel, not both (the other is on line 2)"},
	{LISTEN "redis_sentinel 127.0.0.1:26379\nredis_master m\n"
	 "redis 127.0.0.1:6379\n", 4, "redis: give either redis or "
	 "redis_sentinel, not both (the other is on line 2)"},
	{LISTEN "redis_sentinel 127.0.0.1:26379\n", 2,
	 "redis_sentinel: needs redis_master NAME"},
	{LISTEN "redis 127.0.0.1:6379\nredis_master m\n", 3,
	 "redis_master: only with redis_sentinel"},
	{LISTEN "redis 127.0.0.1:6379\nredis_user u\n", 3,
	 "redis_user: needs redis_password"},
	{LISTEN "redis_sentinel 127.0.0.1:26379,\n", 2,
	 "redis_sentinel: an empty address in '127.0.0.1:26379,'"},
	{LISTEN "redis_sentinel ,127.0.0.1:26379\n", 2, "an empty address"},
	{LISTEN "redis_sentinel a:1,,b:2\n", 2, "an empty address"},
	{LISTEN "redis_sentinel a:1,b\n", 2,
	 "redis_sentinel: 'b' has no port"},
	{LISTEN "redis_sentinel a:1,b:0\n", 2, "bad port '0'"},
	{LISTEN "redis_sentinel a:1,b!:2\n", 2,
	 "redis_sentinel host: 'b!' may only contain"},
	{LISTEN "redis_sentinel a:1,b:2,A:1\n", 2,
	 "redis_sentinel: 'A:1' is given twice"},
	{LISTEN "redis_sentinel a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9\n", 2,
	 "redis_sentinel: too many sentinels (at most 8)"},
	{LISTEN "redis_sentinel a:1 b:2\n", 2,
	 "redis_sentinel: unexpected 'b:2'"},
	{LISTEN "redis_master m!\n", 2, "may only contain"},
	{LISTEN "repl_secret a\nrepl_secret b\n\nrepl_secret c\n", 5,
	 "repl_secret: given a third time (at most twice"},
	{LISTEN "repl_secret a\n\nrepl_secret a\n", 4,
	 "repl_secret: the same secret as on line 2"},
	{LISTEN "ctl_listen localhost:8060\n", 2,
	 "ctl_listen: 'localhost' is not an IP address"},
	{LISTEN "dialog_timeout 12x\n", 2,
	 "dialog_timeout: '12x' is not a whole number"},
	{LISTEN "dialog_timeout -5\n", 2, "is not a whole number"},
	{LISTEN "ring_timeout 0\n", 2,
	 "ring_timeout: 0 is out of range (1-86400)"},
	{LISTEN "ring_timeout 86401\n", 2, "ring_timeout: 86401 is out of range"},
	{LISTEN "udp_rcvbuf lots\n", 2, "udp_rcvbuf: 'lots' is not a whole number"},
	{LISTEN "udp_rcvbuf 2000000000\n", 2, "udp_rcvbuf: 2000000000 is out of range"},
	{LISTEN "dialog_timeout 0\n", 2,
	 "dialog_timeout: 0 is out of range (1-2592000)"},
	{LISTEN "dialog_timeout 99999999999\n", 2, "is not a whole number"},
	{LISTEN "node_timeout 99\n", 2, "node_timeout: 99 is out of range"},
	{LISTEN "rehome_rate 0\n", 2, "rehome_rate: 0 is out of range"},
	{LISTEN "log_level verbose\n", 2,
	 "log_level: 'verbose' is not one of debug|info|warn|error"},
	{LISTEN "log_target file\n", 2,
	 "log_target: 'file' is not one of stderr|syslog"},
	{LISTEN "policy /nonexistent/p.lua\n", 2,
	 "policy: /nonexistent/p.lua: No such file or directory"},
	{LISTEN "node_id a\x01\n", 2, "control character 0x01 in column 10"},
	{"# only comments\nnode_id x\n\n", 3, "no listen line"},
	{"", 1, "no listen line: at least one listener is required"},
	{LISTEN "upstream udp:127.0.0.1:5060\n", 2,
	 "upstream: 127.0.0.1:5060 is this node's own listener (line 1)"},
	{"\nlisten tcp:127.0.0.1:8060 tag=public\n", 2,
	 "listen: tcp:127.0.0.1:8060 is also ctl_listen"},
	{LISTEN "media_relay\n", 2, "media_relay: missing udp:IP:PORT "
	 "(usage: media_relay udp:IP:PORT [weight=N])"},
	{LISTEN "media_relay udp:127.0.0.1:2223 weight=1 x\n", 2,
	 "media_relay: unexpected 'x'"},
	{LISTEN "media_relay 127.0.0.1\n", 2,
	 "media_relay: '127.0.0.1' is not udp:IP:PORT"},
	{LISTEN "media_relay tcp:127.0.0.1:2223\n", 2,
	 "media_relay: unknown transport 'tcp' (the ng protocol runs over "
	 "udp)"},
	{LISTEN "media_relay udp:127.0.0.1\n", 2,
	 "media_relay: '127.0.0.1' has no port"},
	{LISTEN "media_relay udp:127.0.0.1:0\n", 2,
	 "media_relay: bad port '0' (1-65535)"},
	{LISTEN "media_relay udp:rtp.example.com:2223\n", 2,
	 "media_relay: 'rtp.example.com' is not an IP address"},
	{LISTEN "media_relay udp:0.0.0.0:2223\n", 2,
	 "media_relay: 0.0.0.0 is a wildcard"},
	{LISTEN "media_relay udp:[::]:2223\n", 2, "is a wildcard"},
	{LISTEN "media_relay udp:127.0.0.1:2223 weigth=2\n", 2,
	 "media_relay: expected weight=N, not 'weigth=2'"},
	{LISTEN "media_relay udp:127.0.0.1:2223 weight=\n", 2,
	 "media_relay: weight '' is not a whole number from 1 to 1000"},
	{LISTEN "media_relay udp:127.0.0.1:2223 weight=0\n", 2,
	 "weight '0' is not a whole number from 1 to 1000"},
	{LISTEN "media_relay udp:127.0.0.1:2223 weight=1001\n", 2,
	 "weight '1001' is not"},
	{LISTEN "media_relay udp:127.0.0.1:2223 weight=-1\n", 2,
	 "weight '-1' is not"},
	{LISTEN "media_relay udp:127.0.0.1:2223 weight=99999999999\n", 2,
	 "weight '99999999999' is not"},
	{LISTEN "media_relay udp:127.0.0.1:2223\n"
	 "media_relay udp:127.0.0.2:2223\n"
	 "media_relay udp:127.0.0.1:2223 weight=2\n", 4,
	 "media_relay: udp:127.0.0.1:2223 is already configured on line 2"},
	{LISTEN "upstream sip:\n", 2, "upstream: 'sip:' is not a SIP URI"},
	{LISTEN "upstream sip:h;transport=sctp\n", 2,
	 "upstream: unknown transport 'sctp'"},
	{LISTEN "upstream sip:127.0.0.1:5060\n", 2,
	 "upstream: 127.0.0.1:5060 is this node's own listener (line 1)"},
	{LISTEN "dns_server 127.0.0.1:53\ndns_server 127.0.0.2:53\n"
	 "dns_server 127.0.0.3:53\ndns_server 127.0.0.4:53\n"
	 "dns_server 127.0.0.5:53\n", 6, "dns_server: too many servers"},
	{LISTEN "tls_cert /nonexistent/node.pem\n", 2,
	 "tls_cert: /nonexistent/node.pem: No such file"},
	{LISTEN "listen wss:127.0.0.1:8443 tag=public\n", 2,
	 "listen: a WSS listener needs tls_cert"},
	{LISTEN "node_meta site\n", 2, "node_meta: missing VALUE"},
	{LISTEN "node_meta site a b\n", 2, "node_meta: unexpected 'b'"},
	{LISTEN "node_meta si/te paris\n", 2, "node_meta key: 'si/te' may"},
	{LISTEN "node_meta site par:is\n", 2,
	 "node_meta value: 'par:is' may"},
	{LISTEN "node_meta site a\nnode_meta site b\n", 3,
	 "node_meta: 'site' is already given"},
	{LISTEN "workers 0\n", 2, "workers: '0' is not auto or a number"},
	{LISTEN "workers 257\n", 2, "workers: '257' is not auto"},
	{LISTEN "workers many\n", 2, "workers: 'many' is not auto"},
	{LISTEN "workers 2\nredis 127.0.0.1:6379\n", 2,
	 "workers: not with redis"},
	{LISTEN "ctl_listen 127.0.0.1:65535\nworkers 2\n", 3,
	 "would pass 65535"},
	{LISTEN "workers 10\nnode_id "
	 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghi\n", 2,
	 "leaves no room for the suffix -w10"},
	{LISTEN "listen tcp:127.0.0.1:5061 tag=b\nworkers 3\n"
	 "ctl_listen 127.0.0.1:5060\n", 3, "worker 2's control port"},
};


START_TEST(test_bad)
{
	const struct bad *b = &badv[_i];
	char prefix[32];

	ck_assert_int_eq(load(b->text), EINVAL);

	(void)re_snprintf(prefix, sizeof(prefix), "t.conf:%u: ", b->line);
	ck_assert_msg(!strncmp(errbuf, prefix, strlen(prefix)),
		      "case %d: want prefix '%s', got '%s'", _i, prefix, errbuf);
	ck_assert_msg(strstr(errbuf, b->msg) != NULL,
		      "case %d: want '%s' in '%s'", _i, b->msg, errbuf);
	ck_assert_ptr_null(strchr(errbuf, '\n'));
}
END_TEST


START_TEST(test_workers)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	ck_assert_int_eq(load(LISTEN "workers auto\n"), 0);
	ck_assert_uint_eq(cfg.workers, cores < 1 ? 1 : cores);

	ck_assert_int_eq(load("node_id n1\n" LISTEN "workers 3\n"
			      "ctl_listen 127.0.0.1:9000\n"), 0);
	ck_assert_int_eq(conf_worker_apply(&cfg, 0), 0);
	ck_assert_str_eq(cfg.node_id, "n1");
	ck_assert_uint_eq(cfg.worker, 0);

	ck_assert_int_eq(conf_worker_apply(&cfg, 3), 0);
	ck_assert_str_eq(cfg.node_id, "n1-w3");
	assert_sa(&cfg.ctl_listen, "127.0.0.1", 9002);
	ck_assert_uint_eq(cfg.worker, 3);

	ck_assert_int_eq(load(LISTEN "ctl_listen 127.0.0.1:65535\n"), 0);
	ck_assert_int_eq(conf_worker_apply(&cfg, 2), ERANGE);
}
END_TEST


START_TEST(test_node_meta)
{
	ck_assert_int_eq(load(LISTEN "node_meta site paris\n"
			      "node_meta rack r-12\n"), 0);
	ck_assert_uint_eq(cfg.node_metac, 2);
	ck_assert_str_eq(cfg.node_meta[0].key, "site");
	ck_assert_str_eq(cfg.node_meta[0].value, "paris");
	ck_assert_str_eq(cfg.node_meta[1].key, "rack");
	ck_assert_str_eq(cfg.node_meta[1].value, "r-12");
}
END_TEST


START_TEST(test_too_many_listeners)
{
	struct mbuf *mb = mbuf_alloc(1024);

	ck_assert_ptr_nonnull(mb);
	for (unsigned i = 0; i <= CONF_MAX_LISTENERS; i++)
		ck_assert_int_eq(mbuf_printf(mb, "listen udp:127.0.0.1:%u "
					     "tag=t\n", 5000 + i), 0);

	ck_assert_int_eq(conf_load_buf(&cfg, "t.conf", (char *)mb->buf,
				       mb->end, errbuf, sizeof(errbuf)),
			 EINVAL);
	ck_assert_str_eq(errbuf, "t.conf:17: listen: too many listeners "
			 "(at most 16)");
	mem_deref(mb);
}
END_TEST


START_TEST(test_secret_not_echoed)
{
	char secret[129], text[256];

	memset(secret, 'S', sizeof(secret) - 1);
	secret[sizeof(secret) - 1] = '\0';
	(void)re_snprintf(text, sizeof(text), LISTEN "repl_secret %s\n",
			  secret);

	ck_assert_int_eq(load(text), EINVAL);
	ck_assert_str_eq(errbuf, "t.conf:2: repl_secret: too long "
			 "(at most 127 characters)");
}
END_TEST


START_TEST(test_missing_file)
{
	ck_assert_int_eq(conf_load(&cfg, "/nonexistent/rehome.conf", errbuf,
				   sizeof(errbuf)), ENOENT);
	ck_assert_str_eq(errbuf, "/nonexistent/rehome.conf: cannot read: "
			 "No such file or directory");
}
END_TEST


/* Relative policy and certificate paths are found next to the config file */
START_TEST(test_policy_relative_to_file)
{
	char dir[] = "/tmp/test_conf_XXXXXX";
	char path[PATH_MAX], lua[PATH_MAX], real[PATH_MAX];
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	(void)re_snprintf(path, sizeof(path), "%s/r.conf", dir);
	(void)re_snprintf(lua, sizeof(lua), "%s/p.lua", dir);

	f = fopen(lua, "w");
	ck_assert_ptr_nonnull(f);
	fputs("return {}\n", f);
	fclose(f);

	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(LISTEN "policy p.lua\ntls_cert p.lua\ntls_ca p.lua\n", f);
	fclose(f);

	ck_assert_msg(conf_load(&cfg, path, errbuf, sizeof(errbuf)) == 0,
		      "%s", errbuf);
	ck_assert_ptr_nonnull(realpath(lua, real));
	ck_assert_str_eq(cfg.policy, real);
	ck_assert_str_eq(cfg.tls_cert, real);
	ck_assert_str_eq(cfg.tls_ca, real);
	ck_assert_str_eq(cfg.path, path);

	unlink(lua);
	unlink(path);
	rmdir(dir);
}
END_TEST


static void load_shipped(const char *name)
{
	char path[PATH_MAX];

	ck_assert_msg(conf_load(&cfg, src_path(path, sizeof(path), name),
				errbuf, sizeof(errbuf)) == 0,
		      "%s: %s", name, errbuf);
}


START_TEST(test_shipped_single_node)
{
	load_shipped("conf/rehome.conf");

	ck_assert_uint_eq(cfg.listenc, 2);
	ck_assert_int_eq(cfg.listen[0].tp, SIP_TRANSP_UDP);
	ck_assert_int_eq(cfg.listen[1].tp, SIP_TRANSP_TCP);
	for (size_t i = 0; i < cfg.listenc; i++) {
		assert_sa(&cfg.listen[i].addr, "127.0.0.1", 5060);
		ck_assert_str_eq(cfg.listen[i].tag, "public");
	}
	ck_assert(!cfg.has_redis);
	assert_sa(&cfg.ctl_listen, "127.0.0.1", 8060);
}
END_TEST


static void assert_cluster_node(const char *id, const char *ip, bool active)
{
	ck_assert_str_eq(cfg.node_id, id);
	ck_assert_uint_eq(cfg.listenc, 2);
	for (size_t i = 0; i < cfg.listenc; i++) {
		assert_sa(&cfg.listen[i].addr, ip, 5060);
		ck_assert_str_eq(cfg.listen[i].tag, "public");
	}
	ck_assert_uint_eq(cfg.shtagc, 1);
	ck_assert_str_eq(cfg.shtag[0].name, "service");
	ck_assert(cfg.shtag[0].active == active);
	ck_assert_str_eq(cfg.default_shtag, "service");
	ck_assert(cfg.has_redis);
	ck_assert_str_eq(cfg.redis_host, "127.0.0.1");
	ck_assert_uint_eq(cfg.redis_port, 6379);
	ck_assert(str_isset(cfg.repl_secret));
	ck_assert(str_isset(cfg.ctl_token));
	ck_assert_str_eq(cfg.policy, "");
	assert_sa(&cfg.ctl_listen, ip, 8060);
}


START_TEST(test_shipped_cluster)
{
	struct rh_conf node1;

	load_shipped("conf/node1.conf");
	assert_cluster_node("node1", "127.0.0.1", true);
	node1 = cfg;

	load_shipped("conf/node2.conf");
	assert_cluster_node("node2", "127.0.0.2", false);

	ck_assert_str_eq(cfg.cluster, node1.cluster);
	ck_assert_str_eq(cfg.repl_secret, node1.repl_secret);
	ck_assert_str_eq(cfg.ctl_token, node1.ctl_token);
}
END_TEST


static Suite *conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_minimal_keeps_defaults);
	tcase_add_test(tc, test_every_key);
	tcase_add_test(tc, test_redis_ip);
	tcase_add_test(tc, test_upstream_uri);
	tcase_add_test(tc, test_dns_server);
	tcase_add_test(tc, test_redis_sentinel);
	tcase_add_test(tc, test_redis_cluster);
	tcase_add_test(tc, test_redis_password_alone);
	tcase_add_test(tc, test_media_relay);
	tcase_add_test(tc, test_pass_header);
	tcase_add_test(tc, test_too_many_media_relays);
	tcase_add_test(tc, test_default_shtag_is_first_shtag);
	tcase_add_test(tc, test_comments_and_whitespace);
	tcase_add_loop_test(tc, test_bad, 0, ARRAY_SIZE(badv));
	tcase_add_test(tc, test_too_many_listeners);
	tcase_add_test(tc, test_secret_not_echoed);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_policy_relative_to_file);
	tcase_add_test(tc, test_node_meta);
	tcase_add_test(tc, test_workers);
	tcase_add_test(tc, test_shipped_single_node);
	tcase_add_test(tc, test_shipped_cluster);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(conf_suite());
}
