/**
 * @file test_conf_diff.c  Unit tests of what a reload may change
 *
 * A base file is loaded as the running config, the same file with one key
 * changed as the new one: exactly that key must be reported, with the
 * right verdict, and the config to run must take the new value if the key
 * is live and keep the running one otherwise, byte for byte.
 */
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <check.h>
#include <re.h>
#include "log.h"
#include "conf.h"

static struct rh_conf cur, file, run;
static char errbuf[512];

/** What conf_diff() reported */
static struct {
	char keys[512];
	unsigned live, kept;
} seen;

static const char base[] =
	"node_id n1\n"
	"listen udp:127.0.0.1:5070 tag=public\n"
	"shtag alpha active\n"
	"shtag beta backup\n"
	"redis 127.0.0.1:6379\n"
	"cluster acme\n"
	"repl_secret s3cret\n"
	"ctl_listen 127.0.0.1:9000\n"
	"ctl_token tok\n";

/** Changed lines (they replace the base's lines of their first key, and
 * of `drop`) and the keys they must give, all live or all kept */
static const struct change {
	const char *line;
	const char *key;
	bool live;
	const char *drop;
} changev[] = {
	{"node_id n2\n", "node_id", false, NULL},
	{"listen udp:127.0.0.1:5071 tag=public\n", "listen", false, NULL},
	{"upstream udp:127.0.0.9:5080\n", "upstream", true, NULL},
	{"shtag alpha backup\n", "shtag", false, NULL},
	{"default_shtag beta\n", "default_shtag", false, NULL},
	{"media_relay udp:127.0.0.1:2223\n", "media_relay", false, NULL},
	{"redis_sentinel 127.0.0.1:26379\nredis_master mm\n",
	 "redis redis_sentinel redis_master", false, "redis"},
	{"redis_password pw\nredis_user u\n", "redis_user redis_password",
	 false, NULL},
	{"cluster other\n", "cluster", false, NULL},
	{"repl_secret n3w\n", "repl_secret", false, NULL},
	{"repl_secret s3cret\nrepl_secret older\n", "repl_secret", false,
	 NULL},
	{"policy @\n", "policy", true, NULL},
	{"ctl_listen 127.0.0.1:9001\n", "ctl_listen", false, NULL},
	{"ctl_token n3w\n", "ctl_token", true, NULL},
	{"dialog_timeout 60\n", "dialog_timeout", true, NULL},
	{"node_timeout 500\n", "node_timeout", false, NULL},
	{"rehome_rate 50\n", "rehome_rate", true, NULL},
	{"log_level debug\n", "log_level", true, NULL},
	{"log_target syslog\n", "log_target", true, NULL},
};


static void diff_handler(const char *key, bool live, void *arg)
{
	size_t n = strlen(seen.keys);
	(void)arg;

	(void)re_snprintf(seen.keys + n, sizeof(seen.keys) - n, "%s%s",
			  n ? " " : "", key);
	if (live)
		++seen.live;
	else
		++seen.kept;
}


static bool is_key(const struct pl *ln, const struct pl *key)
{
	return pl_isset(key) && ln->l > key->l &&
		!memcmp(ln->p, key->p, key->l) && ln->p[key->l] == ' ';
}


/** The base file with `line` in place of the lines of its key and of
 * `drop` (or added) */
static void load_changed(struct rh_conf *cfg, const char *line,
			 const char *drop)
{
	char text[2048], policy[PATH_MAX];
	struct pl key = PL_INIT, dropped = PL_INIT;
	const char *root = getenv("REHOME_SRC");
	const char *at = line ? strchr(line, '@') : NULL;
	struct pl rest;
	size_t n = 0;

	if (line) {
		key.p = line;
		key.l = strcspn(line, " ");
	}
	if (drop)
		pl_set_str(&dropped, drop);

	/* each base line, except the one(s) of the changed key */
	pl_set_str(&rest, base);
	while (rest.l) {
		const char *nl = pl_strchr(&rest, '\n');
		struct pl ln = {rest.p, (size_t)(nl - rest.p) + 1};

		if (!is_key(&ln, &key) && !is_key(&ln, &dropped))
			n += re_snprintf(text + n, sizeof(text) - n, "%r", &ln);
		pl_advance(&rest, ln.l);
	}

	/* "@": a real file, as policy needs one */
	(void)re_snprintf(policy, sizeof(policy), "%s/meson.build",
			  root ? root : ".");
	if (at)
		(void)re_snprintf(text + n, sizeof(text) - n, "%b%s\n",
				  line, (size_t)(at - line), policy);
	else if (line)
		(void)re_snprintf(text + n, sizeof(text) - n, "%s", line);

	ck_assert_msg(conf_load_buf(cfg, "t.conf", text, strlen(text),
				    errbuf, sizeof(errbuf)) == 0,
		      "%s: %s", text, errbuf);
}


static void diff(void)
{
	memset(&seen, 0, sizeof(seen));
	ck_assert_int_eq(conf_diff(&run, &cur, &file, diff_handler, NULL), 0);
}


START_TEST(test_same_file)
{
	load_changed(&cur, NULL, NULL);
	load_changed(&file, NULL, NULL);
	diff();

	ck_assert_str_eq(seen.keys, "");
	ck_assert(0 == memcmp(&run, &cur, sizeof(run)));
}
END_TEST


START_TEST(test_one_key)
{
	const struct change *c = &changev[_i];
	struct rh_conf want;

	load_changed(&cur, NULL, NULL);
	load_changed(&file, c->line, c->drop);
	diff();

	ck_assert_str_eq(seen.keys, c->key);
	ck_assert_uint_eq(c->live ? seen.live : seen.kept,
			  seen.live + seen.kept);

	/* live: the file's config (but its path); kept: the running one */
	want = c->live ? file : cur;
	memcpy(want.path, cur.path, sizeof(want.path));
	ck_assert_msg(0 == memcmp(&run, &want, sizeof(run)), "%s", c->key);
}
END_TEST


START_TEST(test_every_key)
{
	load_changed(&cur, NULL, NULL);
	conf_defaults(&file);
	file.listenc = 1;          /* enough to differ from the defaults */
	file.shtagc = 1;
	file.media_relayc = 1;
	file.has_upstream = true;
	file.has_redis = true;
	file.redis_sentinelc = 1;
	file.redis_master[0] = 'm';
	file.redis_user[0] = 'u';
	file.redis_password[0] = 'p';
	file.repl_secret2[0] = 's';
	file.policy[0] = '/';
	file.ctl_token[0] = 'x';
	file.dialog_timeout = 1;
	file.rehome_rate = 1;
	file.node_timeout = 100;
	file.workers = 2;
	file.log_level = LOG_ERROR;
	file.log_target = LOG_TARGET_SYSLOG;
	str_ncpy(file.node_id, "other", sizeof(file.node_id));
	str_ncpy(file.default_shtag, "other", sizeof(file.default_shtag));
	str_ncpy(file.cluster, "other", sizeof(file.cluster));
	(void)sa_set_str(&file.ctl_listen, "127.0.0.2", 1);
	diff();

	/* in the order of the file's keys, none of them unknown */
	ck_assert_str_eq(seen.keys, "node_id listen upstream shtag "
			 "default_shtag workers redis redis_sentinel redis_master "
			 "redis_user redis_password media_relay cluster "
			 "repl_secret policy ctl_listen ctl_token "
			 "dialog_timeout node_timeout rehome_rate log_level "
			 "log_target");
	ck_assert_uint_eq(seen.live, 7);
	ck_assert_str_eq(run.node_id, cur.node_id);
	ck_assert_uint_eq(run.rehome_rate, 1);
	ck_assert_int_eq(run.log_level, LOG_ERROR);
}
END_TEST


START_TEST(test_bad_args)
{
	ck_assert_int_eq(conf_diff(NULL, &cur, &file, diff_handler, NULL),
			 EINVAL);
	ck_assert_int_eq(conf_diff(&run, &cur, &file, NULL, NULL), EINVAL);
}
END_TEST


static Suite *conf_diff_suite(void)
{
	Suite *s = suite_create("conf_diff");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_same_file);
	tcase_add_loop_test(tc, test_one_key, 0, ARRAY_SIZE(changev));
	tcase_add_test(tc, test_every_key);
	tcase_add_test(tc, test_bad_args);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(conf_diff_suite());
}
