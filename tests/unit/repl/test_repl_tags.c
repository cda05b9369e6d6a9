/**
 * @file test_repl_tags.c  Sharing tags between nodes, over restarts of both
 *
 * Who holds a tag and who serves its dialogs: n1 claims its tags at
 * start, steps down when n2 takes one, races n2 for the same epoch,
 * respects a live holder, takes its own back after a restart, and writes
 * its tags and dialogs again into a new, empty Redis. The fixture
 * (repl_peer.c) runs n1 here and plays n2 over its own Redis connection.
 */
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <hiredis/hiredis.h>
#include <re.h>
#include "conf.h"
#include "did.h"
#include "cseq.h"
#include "dialog.h"
#include "redis.h"
#include "cluster.h"
#include "shtag.h"
#include "repl.h"
#include "repl_peer.h"


START_TEST(t_start_claims_and_syncs)
{
	char v[128];

	fixture_node_start();

	peer_cmd_str(v, sizeof(v), "HGET t:shtags a");
	ck_assert_str_eq(v, "1 n1");
	ck_assert_uint_eq(shtag_epoch("a"), 1);
	ck_assert(!shtag_is_active("b"));
	ck_assert_int_eq(peer_cmd_int("EXISTS t:node:n1"), 1);
	ck_assert_int_eq(redis_state(), REDIS_ST_UP);
	ck_assert_str_eq(cluster_node_id(), "n1");
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

	fixture_node_start();

	local = fixture_dialog(0x5e7e000000000001ULL, "a", "n1");
	ck_assert_int_eq(dialog_insert(local), 0);
	dialog_changed(local, DIALOG_EV_CONFIRMED);
	fixture_did = local->did;
	ck_assert(fixture_run_until(fixture_key_exists, 2000));
	ck_assert_int_eq(repl_serve_rule(local, NULL), REPL_SERVE);

	ck_assert(fixture_run_until(n2_alive, 2000));
	ck_assert_int_eq(cluster_node_lsnr(&sa, "n2", "pub", SIP_TRANSP_UDP),
			 0);
	ck_assert_uint_eq(sa_port(&sa), 27250);

	/* n2 takes tag a: n1 steps down, its dialog becomes a replica */
	ck_assert(peer_take("a", shtag_epoch("a")));
	ck_assert(fixture_run_until(a_lost, 2000));
	ck_assert_str_eq(shtag_holder("a"), "n2");
	ck_assert_uint_eq(shtag_epoch("a"), 2);
	ck_assert(local->replica);
	/* owned by n1 still, but n1 no longer serves it: nobody does yet */
	ck_assert_int_eq(repl_serve_rule(local, NULL), REPL_HOLD);

	/* n2 adopts it: served by n2, so relayed there while n2 lives */
	peer_dlg = fixture_dialog(local->did, "a", "n2");
	peer_dlg->version = local->version + 1;
	peer_publish(peer_dlg, "updated", 2);
	ck_assert(fixture_run_until(local_adopted_by_n2, 2000));
	d = dialog_lookup(local->did);
	ck_assert(d->replica);
	ck_assert_int_eq(repl_serve_rule(d, &node), REPL_RELAY);
	ck_assert_str_eq(node, "n2");

	/* n2 dies: nobody may touch it until someone takes the tag */
	ck_assert(fixture_run_until(n2_dead, 5000));
	ck_assert_int_eq(repl_serve_rule(d, NULL), REPL_HOLD);

	/* a new call of a tag held by n2 is served here, not replicated */
	late = fixture_dialog(0x5e7e000000000002ULL, "a", "n1");
	ck_assert_int_eq(dialog_insert(late), 0);
	dialog_changed(late, DIALOG_EV_CREATED);
	fixture_did = late->did;
	fixture_run_for(200);
	ck_assert(!fixture_key_exists());
	ck_assert_int_eq(repl_serve_rule(late, NULL), REPL_SERVE);
	ck_assert_int_ge(fixture_repl_counter("not_replicated"), 1);

	mem_deref(late);
	local = mem_deref(local);
	peer_dlg = mem_deref(peer_dlg);
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

	peer_cmd_str(v, sizeof(v), "HGET t:shtags a");
	re_snprintf(want, sizeof(want), "%llu %s",
		    (unsigned long long)shtag_epoch("a"), shtag_holder("a"));
	return !str_cmp(v, want);
}


START_TEST(t_activate_race)
{
	unsigned won = 0, lost = 0;

	fixture_node_start();

	for (int i = 0; i < 60; i++) {
		uint64_t e = shtag_epoch("a");
		bool peer_won;

		race_done = false;
		ck_assert_int_eq(shtag_activate("a", race_result, NULL), 0);
		/* n2 asks for the same epoch: before or after n1's request */
		if (i % 2)
			fixture_run_for(1);
		peer_won = peer_take("a", e);
		ck_assert(fixture_run_until(race_settled, 2000));

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

START_TEST(t_redis_restart)
{
	struct dialog *live, *gone, *born;
	char v[64];

	fixture_node_start();

	live = fixture_dialog(0xaaaa000000000001ULL, "a", "n1");
	gone = fixture_dialog(0xaaaa000000000002ULL, "a", "n1");
	ck_assert_int_eq(dialog_insert(live), 0);
	ck_assert_int_eq(dialog_insert(gone), 0);
	dialog_changed(live, DIALOG_EV_CONFIRMED);
	dialog_changed(gone, DIALOG_EV_CONFIRMED);
	fixture_did = gone->did;
	ck_assert(fixture_run_until(fixture_key_exists, 2000));

	/* a replica of n2's, which will have ended while we were away */
	peer_dlg = fixture_dialog(0xbbbb000000000001ULL, "b", "n2");
	peer_dlg->version = 1;
	peer_publish(peer_dlg, "confirmed", 0);
	ck_assert(fixture_run_until(peer_applied, 2000));

	fixture_redis_stop();
	ck_assert(fixture_run_until(fixture_redis_down, 5000));

	/* calls go on: change one, end one, start one */
	fixture_set_id(live, DIALOG_ID_TO_TAG, "changed");
	dialog_changed(live, DIALOG_EV_UPDATED);
	dialog_end(gone);
	born = fixture_dialog(0xaaaa000000000003ULL, "a", "n1");
	ck_assert_int_eq(dialog_insert(born), 0);
	dialog_changed(born, DIALOG_EV_CREATED);
	ck_assert_int_eq(fixture_repl_counter("pending_resnapshot"), 2);
	ck_assert_int_eq(fixture_repl_counter("pending_endings"), 1);
	ck_assert(!cluster_synced());

	/* a new, empty Redis */
	fixture_redis_start();
	ck_assert(fixture_run_until(fixture_synced, 8000));

	/* the tag is restored, ours are written again, the replica swept */
	peer_cmd_str(v, sizeof(v), "HGET t:shtags a");
	ck_assert_str_eq(v, "1 n1");
	ck_assert(shtag_is_active("a"));
	ck_assert_uint_eq(peer_snapshot_ver(live->did), live->version);
	ck_assert_int_eq(peer_cmd_int("EXISTS t:dlg:%016llx",
				      (unsigned long long)born->did), 1);
	ck_assert_int_eq(peer_cmd_int("EXISTS t:dlg:%016llx",
				      (unsigned long long)gone->did), 0);
	ck_assert_ptr_null(dialog_lookup(peer_dlg->did));
	ck_assert_int_eq(fixture_repl_counter("pending_endings"), 0);
	ck_assert_int_eq(fixture_repl_counter("pending_resnapshot"), 0);

	mem_deref(live);
	mem_deref(gone);
	mem_deref(born);
	peer_dlg = mem_deref(peer_dlg);
}
END_TEST

START_TEST(t_claim_respects_live_holder)
{
	peer_cmd_ok("HSET t:shtags a %s", "5 n2");
	peer_cmd_ok("SET t:node:n2 x PX 60000");

	ck_assert_int_eq(cluster_init(&fixture_cfg), 0);
	ck_assert_int_eq(repl_init(&fixture_cfg), 0);
	ck_assert(fixture_run_until(fixture_synced, 5000));
	fixture_run_for(300);

	ck_assert(!shtag_is_active("a"));
	ck_assert_str_eq(shtag_holder("a"), "n2");
	ck_assert_uint_eq(shtag_epoch("a"), 5);

	/* n2 is gone: an explicit activation takes it */
	peer_cmd_ok("DEL t:node:n2");
	race_done = false;
	ck_assert_int_eq(shtag_activate("a", race_result, NULL), 0);
	ck_assert(fixture_run_until(fixture_synced_active_a, 2000));
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
	peer_cmd_ok("HSET t:shtags a %s b %s", "4 n1", "3 n1");
	peer_dlg = fixture_dialog(0xcccc000000000001ULL, "a", "n1");
	peer_dlg->version = 7;
	peer_snapshot(peer_dlg);

	fixture_node_start();
	ck_assert(fixture_run_until(b_released, 2000));

	peer_cmd_str(v, sizeof(v), "HGET t:shtags a");
	ck_assert_str_eq(v, "5 n1");
	peer_cmd_str(v, sizeof(v), "HGET t:shtags b");
	ck_assert_str_eq(v, "4 ");

	d = dialog_lookup(peer_dlg->did);
	ck_assert_ptr_nonnull(d);
	ck_assert(!d->replica);
	ck_assert_str_eq(d->owner, "n1");
	ck_assert_uint_gt(d->version, 7);
	ck_assert_int_eq(repl_serve_rule(d, NULL), REPL_SERVE);

	peer_dlg = mem_deref(peer_dlg);
}
END_TEST


static Suite *repl_tags_suite(void)
{
	Suite *s = suite_create("repl_tags");
	TCase *tc = tcase_create("redis");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, t_start_claims_and_syncs);
	tcase_add_test(tc, t_steps_down_and_serve_rule);
	tcase_add_test(tc, t_activate_race);
	tcase_add_test(tc, t_redis_restart);
	tcase_add_test(tc, t_claim_respects_live_holder);
	tcase_add_test(tc, t_restart_takes_back_own);
	suite_add_tcase(s, tc);

	return s;
}


int main(void)
{
	return fixture_main(repl_tags_suite());
}
