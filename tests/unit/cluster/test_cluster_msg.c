/**
 * @file test_cluster_msg.c  Unit tests of the signed envelope and its replay rule
 *
 * The rule (cluster_fresh_check) on its own, with made-up stamps and
 * clocks: sequence per boot, a restart, the window both ways. Then whole
 * messages through cluster_msg.c, one process playing each node in turn
 * (the module is one per process): what one node seals another opens
 * once, a second time is a replay, a snapshot read back is not checked
 * for freshness; tampering, unsigned and malformed messages are told
 * apart; and two secrets during a key change. Records (snapshots: no
 * stamp) the same way, and neither passes for the other.
 */
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "cluster.h"
#include "cluster_int.h"

enum {
	WINDOW = 3000,
	NOW    = 1000000,
	MSGS   = 4,
};

static struct cluster_seen seen;


static struct cluster_stamp stamp(uint64_t boot, uint64_t seq, uint64_t ts)
{
	struct cluster_stamp st = {.boot = boot, .seq = seq, .ts = ts};

	pl_set_str(&st.node, "n2");
	return st;
}


static int check(uint64_t boot, uint64_t seq, uint64_t ts, uint64_t now)
{
	struct cluster_stamp st = stamp(boot, seq, ts);

	return cluster_fresh_check(&seen, &st, now, WINDOW);
}


static void rule_setup(void)
{
	memset(&seen, 0, sizeof(seen));
}


START_TEST(t_sequence_per_boot)
{
	ck_assert_int_eq(check(7, 1, NOW, NOW), 0);
	ck_assert_int_eq(check(7, 2, NOW, NOW), 0);
	ck_assert_int_eq(check(7, 2, NOW, NOW), EALREADY);
	ck_assert_int_eq(check(7, 1, NOW + 5, NOW + 5), EALREADY);

	/* a gap (a message that was never published) is fine */
	ck_assert_int_eq(check(7, 10, NOW + 10, NOW + 10), 0);
	ck_assert_int_eq(check(7, 9, NOW + 11, NOW + 11), EALREADY);
	ck_assert_uint_eq(seen.seq, 10);
	ck_assert_uint_eq(seen.boot, 7);
}
END_TEST


START_TEST(t_restart_needs_later_clock)
{
	ck_assert_int_eq(check(7, 50, NOW, NOW), 0);

	/* a message of another boot from before the last one: replayed */
	ck_assert_int_eq(check(8, 1, NOW - 1, NOW), EALREADY);
	ck_assert_int_eq(check(8, 1, NOW, NOW), EALREADY);
	ck_assert_uint_eq(seen.boot, 7);

	/* the restarted sender: its sequence starts again */
	ck_assert_int_eq(check(8, 1, NOW + 1, NOW + 1), 0);
	ck_assert_uint_eq(seen.boot, 8);
	ck_assert_uint_eq(seen.seq, 1);

	/* and the old boot cannot come back, whatever its sequence */
	ck_assert_int_eq(check(7, 51, NOW, NOW + 2), EALREADY);
	ck_assert_int_eq(check(8, 2, NOW + 2, NOW + 2), 0);
}
END_TEST


START_TEST(t_window_both_ways)
{
	/* nothing known yet: only the clock tells */
	ck_assert_int_eq(check(7, 1, NOW - WINDOW - 1, NOW), ETIMEDOUT);
	ck_assert_int_eq(check(7, 1, NOW + WINDOW + 1, NOW), ETIMEDOUT);
	ck_assert_uint_eq(seen.boot, 0);
	ck_assert_int_eq(check(7, 1, NOW - WINDOW, NOW), 0);

	/* a fresh sequence number does not make an old message new */
	ck_assert_int_eq(check(7, 2, NOW - WINDOW - 1, NOW), ETIMEDOUT);
	ck_assert_uint_eq(seen.seq, 1);
	ck_assert_int_eq(check(7, 2, NOW + WINDOW, NOW), 0);

	/* both wrong: a replay first */
	ck_assert_int_eq(check(7, 2, NOW - 10 * WINDOW, NOW), EALREADY);
}
END_TEST


START_TEST(t_clock_going_back_within_a_boot)
{
	ck_assert_int_eq(check(7, 1, NOW + 100, NOW), 0);
	ck_assert_int_eq(check(7, 2, NOW + 50, NOW), 0);
	ck_assert_uint_eq(seen.ts, NOW + 100);

	/* a restart must be later than the latest clock of that boot */
	ck_assert_int_eq(check(9, 1, NOW + 80, NOW), EALREADY);
	ck_assert_int_eq(check(9, 1, NOW + 101, NOW), 0);
}
END_TEST


/* ---- whole messages ------------------------------------------------- */


static struct rh_conf cfg;
static char sent[MSGS][512];


static void node_as(const char *id, const char *secret, const char *second)
{
	cluster_msg_close();
	conf_defaults(&cfg);
	str_ncpy(cfg.node_id, id, sizeof(cfg.node_id));
	str_ncpy(cfg.repl_secret, secret, sizeof(cfg.repl_secret));
	str_ncpy(cfg.repl_secret2, second, sizeof(cfg.repl_secret2));
	ck_assert_int_eq(cluster_msg_init(&cfg), 0);
}


/* Seal MSGS heartbeat-like bodies as the current node */
static void send_all(void)
{
	for (size_t i = 0; i < MSGS; i++) {
		struct mbuf *mb = NULL;

		ck_assert_int_eq(cluster_msg_alloc(&mb), 0);
		ck_assert_int_eq(mbuf_printf(mb, "{\"n\":%zu}", i), 0);
		ck_assert_int_eq(cluster_msg_seal(mb), 0);
		ck_assert_uint_lt(mb->end, sizeof(sent[i]));
		memcpy(sent[i], mb->buf, mb->end);
		sent[i][mb->end] = '\0';
		mem_deref(mb);
	}
}


static int open_live(const char *text, struct pl *body)
{
	struct pl msg;

	pl_set_str(&msg, text);
	return cluster_msg_open(body, &msg);
}


static int64_t dropped(const char *reason)
{
	struct odict *od = NULL;
	const struct odict_entry *m, *d;
	uint64_t v = 0;

	ck_assert_int_eq(odict_alloc(&od, 4), 0);
	ck_assert_int_eq(cluster_fresh_status(od), 0);
	m = odict_get_type(od, ODICT_OBJECT, "messages");
	ck_assert_ptr_nonnull(m);
	d = odict_get_type(m->u.odict, ODICT_OBJECT, "dropped");
	ck_assert_ptr_nonnull(d);
	ck_assert(odict_get_number(d->u.odict, &v, reason));
	mem_deref(od);

	return (int64_t)v;
}


static void msg_teardown(void)
{
	cluster_msg_close();
}


START_TEST(t_opened_once)
{
	struct pl body, msg;

	node_as("n1", "key-a", "");
	send_all();

	node_as("n2", "key-a", "");
	ck_assert_int_eq(open_live(sent[0], &body), 0);
	ck_assert_int_eq(pl_strcmp(&body, "{\"n\":0}"), 0);
	ck_assert_int_eq(open_live(sent[2], &body), 0);

	/* again, or an older one: replays */
	ck_assert_int_eq(open_live(sent[2], &body), EALREADY);
	ck_assert_int_eq(open_live(sent[1], &body), EALREADY);
	ck_assert_int_eq(dropped("replay"), 2);
	ck_assert_int_eq(open_live(sent[3], &body), 0);

	/* read back from Redis, it is only checked for its seal */
	pl_set_str(&msg, sent[1]);
	ck_assert_int_eq(cluster_msg_open_stored(&body, &msg), 0);
	ck_assert_int_eq(cluster_msg_open_stored(&body, &msg), 0);
	ck_assert_int_eq(pl_strcmp(&body, "{\"n\":1}"), 0);
}
END_TEST


START_TEST(t_own_earlier_run_is_a_replay)
{
	struct pl body;

	node_as("n1", "key-a", "");
	send_all();

	/* the same node started again: its old messages are replays */
	node_as("n1", "key-a", "");
	ck_assert_int_eq(open_live(sent[3], &body), EALREADY);
}
END_TEST


START_TEST(t_tampered_unsigned_malformed)
{
	char *copy = NULL, *stamp_end;
	struct pl body;

	node_as("n1", "key-a", "");
	send_all();
	node_as("n2", "key-a", "");

	/* the stamp is under the seal: a new sequence number breaks it */
	ck_assert_int_eq(str_dup(&copy, sent[0]), 0);
	stamp_end = copy + 64 + 1 + 16 + 1;
	ck_assert_int_eq(*stamp_end, '1');
	*stamp_end = '9';
	ck_assert_int_eq(open_live(copy, &body), EACCES);

	memset(copy, '-', 64);
	ck_assert_int_eq(open_live(copy, &body), EBADMSG);

	ck_assert_int_eq(open_live("{\"node\":\"n1\"}", &body), EPROTO);
	ck_assert_int_eq(dropped("bad_signature"), 1);
	ck_assert_int_eq(dropped("unsigned"), 1);
	ck_assert_int_eq(dropped("malformed"), 1);

	/* the genuine one still passes: nothing above counted as seen */
	ck_assert_int_eq(open_live(sent[0], &body), 0);
	mem_deref(copy);
}
END_TEST


START_TEST(t_two_secrets)
{
	struct pl body;

	node_as("n1", "key-a", "");
	send_all();

	/* "B then A": signs with B, accepts A */
	node_as("n2", "key-b", "key-a");
	ck_assert_int_eq(open_live(sent[0], &body), 0);

	/* B only: A's messages are forged to it */
	node_as("n3", "key-b", "");
	ck_assert_int_eq(open_live(sent[1], &body), EACCES);

	/* what "B then A" signs, "A then B" reads, and A alone does not */
	node_as("n2", "key-b", "key-a");
	send_all();
	node_as("n1", "key-a", "key-b");
	ck_assert_int_eq(open_live(sent[0], &body), 0);
	node_as("n4", "key-a", "");
	ck_assert_int_eq(open_live(sent[1], &body), EACCES);
}
END_TEST


START_TEST(t_no_secret)
{
	struct pl body;

	node_as("n1", "", "");
	send_all();
	ck_assert_int_eq(strncmp(sent[0], "----", 4), 0);

	/* unsigned, but still stamped: replays are still dropped */
	node_as("n2", "", "");
	ck_assert_int_eq(open_live(sent[0], &body), 0);
	ck_assert_int_eq(open_live(sent[0], &body), EALREADY);
}
END_TEST


/* ---- records ------------------------------------------------------- */


/* "<seal>\n<data>" as the current node seals it */
static void record(char *rec, size_t sz, const char *data)
{
	char seal[CLUSTER_RECORD_SEAL + 1], *body = NULL;
	struct pl pl;

	ck_assert_int_eq(re_sdprintf(&body, "\n%s", data), 0);
	pl_set_str(&pl, body);
	ck_assert_int_eq(cluster_record_seal(seal, sizeof(seal), &pl), 0);
	ck_assert_uint_eq(strlen(seal), CLUSTER_RECORD_SEAL);
	ck_assert_int_gt(re_snprintf(rec, sz, "%s%s", seal, body), 0);
	mem_deref(body);
}


static int open_rec(const char *text, struct pl *data)
{
	struct pl rec;

	pl_set_str(&rec, text);
	return cluster_record_open(data, &rec);
}


START_TEST(t_record)
{
	char rec[128], forged[128];
	struct pl data, pl;

	node_as("n1", "key-a", "");
	record(rec, sizeof(rec), "{\"n\":1}");
	ck_assert_int_eq(rec[CLUSTER_RECORD_SEAL], '\n');
	ck_assert_ptr_null(strchr(rec, '='));

	/* no stamp: any node, any number of times */
	node_as("n2", "key-a", "");
	ck_assert_int_eq(open_rec(rec, &data), 0);
	ck_assert_int_eq(pl_strcmp(&data, "{\"n\":1}"), 0);
	ck_assert_int_eq(open_rec(rec, &data), 0);

	/* the data is under the seal, and so is the newline */
	str_ncpy(forged, rec, sizeof(forged));
	forged[CLUSTER_RECORD_SEAL + 6] = '2';
	ck_assert_int_eq(open_rec(forged, &data), EACCES);
	memset(forged, '-', CLUSTER_RECORD_SEAL);
	ck_assert_int_eq(open_rec(forged, &data), EBADMSG);

	/* a message is no record, nor the other way */
	send_all();
	pl_set_str(&pl, sent[0]);
	ck_assert(!cluster_record_is(&pl));
	ck_assert_int_eq(open_rec(sent[0], &data), EPROTO);
	pl_set_str(&pl, rec);
	ck_assert(cluster_record_is(&pl));
	ck_assert_int_eq(cluster_msg_open_stored(&data, &pl), EPROTO);
	ck_assert_int_eq(dropped("bad_signature"), 1);
	ck_assert_int_eq(dropped("unsigned"), 1);
	ck_assert_int_eq(dropped("malformed"), 2);

	/* only "\n<data>" is sealed */
	pl_set_str(&pl, "{}");
	ck_assert_int_eq(cluster_record_seal(forged, sizeof(forged), &pl),
			 EINVAL);
}
END_TEST


START_TEST(t_record_secrets)
{
	char rec[128], unsig[128];
	struct pl data;

	node_as("n1", "key-a", "");
	record(rec, sizeof(rec), "{}");

	node_as("n2", "key-b", "key-a");
	ck_assert_int_eq(open_rec(rec, &data), 0);
	node_as("n3", "key-b", "");
	ck_assert_int_eq(open_rec(rec, &data), EACCES);

	/* without a secret: unsigned, and read by nodes without one only */
	node_as("n1", "", "");
	record(unsig, sizeof(unsig), "{}");
	ck_assert_int_eq(strspn(unsig, "-"), CLUSTER_RECORD_SEAL);
	ck_assert_int_eq(open_rec(unsig, &data), 0);
	ck_assert_int_eq(open_rec(rec, &data), 0);
	node_as("n2", "key-a", "");
	ck_assert_int_eq(open_rec(unsig, &data), EBADMSG);
}
END_TEST


static Suite *cluster_msg_suite(void)
{
	Suite *s = suite_create("cluster_msg");
	TCase *rule = tcase_create("rule");
	TCase *msgs = tcase_create("messages");

	tcase_add_checked_fixture(rule, rule_setup, NULL);
	tcase_add_test(rule, t_sequence_per_boot);
	tcase_add_test(rule, t_restart_needs_later_clock);
	tcase_add_test(rule, t_window_both_ways);
	tcase_add_test(rule, t_clock_going_back_within_a_boot);
	suite_add_tcase(s, rule);

	tcase_add_checked_fixture(msgs, NULL, msg_teardown);
	tcase_add_test(msgs, t_opened_once);
	tcase_add_test(msgs, t_own_earlier_run_is_a_replay);
	tcase_add_test(msgs, t_tampered_unsigned_malformed);
	tcase_add_test(msgs, t_two_secrets);
	tcase_add_test(msgs, t_no_secret);
	tcase_add_test(msgs, t_record);
	tcase_add_test(msgs, t_record_secrets);
	suite_add_tcase(s, msgs);

	return s;
}


#include "check_main.h"

int main(void)
{
	log_set_level(LOG_ERROR);
	return check_main(cluster_msg_suite());
}
