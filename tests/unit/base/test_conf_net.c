/**
 * @file test_conf_net.c  Unit tests of the upstream, TLS and DNS keys
 *
 * The upstream URI in both its forms, the DNS servers, the certificate
 * paths (relative to the config file, like the policy's) and the rules
 * that tie TLS listeners and a TLS upstream to a certificate.
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


START_TEST(test_upstream_short_form)
{
	ck_assert_msg(load(LISTEN "upstream tcp:127.0.0.9:5080\n") == 0, "%s",
		      errbuf);
	ck_assert_str_eq(cfg.upstream_uri, "sip:127.0.0.9:5080;transport=tcp");
	ck_assert_int_eq(cfg.upstream_tp, SIP_TRANSP_TCP);

	ck_assert_msg(load(LISTEN "upstream udp:[::1]:5080\n") == 0, "%s",
		      errbuf);
	ck_assert_str_eq(cfg.upstream_uri, "sip:[::1]:5080");
}
END_TEST


START_TEST(test_upstream_uri)
{
	struct sa want;

	ck_assert_msg(load(LISTEN "upstream sip:trunk.example.com\n") == 0,
		      "%s", errbuf);
	ck_assert(cfg.has_upstream);
	ck_assert_str_eq(cfg.upstream_uri, "sip:trunk.example.com");
	ck_assert(!sa_isset(&cfg.upstream, SA_ADDR));

	ck_assert_msg(load(LISTEN "upstream sip:127.0.0.9;transport=tcp\n")
		      == 0, "%s", errbuf);
	ck_assert_int_eq(cfg.upstream_tp, SIP_TRANSP_TCP);
	ck_assert_int_eq(sa_set_str(&want, "127.0.0.9", 5060), 0);
	ck_assert(sa_cmp(&cfg.upstream, &want, SA_ALL));
}
END_TEST


START_TEST(test_dns_server)
{
	ck_assert_msg(load(LISTEN "dns_server 127.0.0.53:53\n"
			   "dns_server [::1]:5353\n") == 0, "%s", errbuf);
	ck_assert_uint_eq(cfg.dns_serverc, 2);
	ck_assert_uint_eq(sa_port(&cfg.dns_server[1]), 5353);
	ck_assert_int_eq(sa_af(&cfg.dns_server[1]), AF_INET6);
}
END_TEST


/* Certificates are found next to the config file, like the policy */
START_TEST(test_tls_paths)
{
	char dir[] = "/tmp/test_conf_net_XXXXXX";
	char path[PATH_MAX], pem[PATH_MAX], real[PATH_MAX];
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	(void)re_snprintf(path, sizeof(path), "%s/r.conf", dir);
	(void)re_snprintf(pem, sizeof(pem), "%s/node.pem", dir);

	f = fopen(pem, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);

	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("listen tls:127.0.0.1:5061 tag=public\n"
	      "tls_cert node.pem\ntls_ca node.pem\n"
	      "upstream sip:127.0.0.9:5061;transport=tls\n", f);
	fclose(f);

	ck_assert_msg(conf_load(&cfg, path, errbuf, sizeof(errbuf)) == 0,
		      "%s", errbuf);
	ck_assert_ptr_nonnull(realpath(pem, real));
	ck_assert_str_eq(cfg.tls_cert, real);
	ck_assert_str_eq(cfg.tls_ca, real);
	ck_assert_int_eq(cfg.listen[0].tp, SIP_TRANSP_TLS);
	ck_assert_int_eq(cfg.upstream_tp, SIP_TRANSP_TLS);

	unlink(pem);
	unlink(path);
	rmdir(dir);
}
END_TEST


struct bad {
	const char *text;
	unsigned line;
	const char *msg;
};

static const struct bad badv[] = {
	{LISTEN "upstream sip:\n", 2, "upstream: 'sip:' is not a SIP URI"},
	{LISTEN "upstream sip:h;transport=sctp\n", 2,
	 "upstream: unknown transport 'sctp'"},
	{LISTEN "upstream sip:127.0.0.1:5060\n", 2,
	 "upstream: 127.0.0.1:5060 is this node's own listener (line 1)"},
	{LISTEN "dns_server 127.0.0.1\n", 2, "dns_server: '127.0.0.1' has no "
	 "port"},
	{LISTEN "dns_server 127.0.0.1:53\ndns_server 127.0.0.2:53\n"
	 "dns_server 127.0.0.3:53\ndns_server 127.0.0.4:53\n"
	 "dns_server 127.0.0.5:53\n", 6, "dns_server: too many servers"},
	{LISTEN "tls_cert /nonexistent/node.pem\n", 2,
	 "tls_cert: /nonexistent/node.pem: No such file"},
	{LISTEN "listen wss:127.0.0.1:8443 tag=public\n", 2,
	 "listen: a WSS listener needs tls_cert"},
	{LISTEN "upstream sip:127.0.0.9;transport=tls\n", 2,
	 "upstream: sending over TLS needs a tls listener"},
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
}
END_TEST


static Suite *suite(void)
{
	Suite *s = suite_create("conf_net");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_upstream_short_form);
	tcase_add_test(tc, test_upstream_uri);
	tcase_add_test(tc, test_dns_server);
	tcase_add_test(tc, test_tls_paths);
	tcase_add_loop_test(tc, test_bad, 0, ARRAY_SIZE(badv));
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(suite());
}
