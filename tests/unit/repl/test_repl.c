/**
 * @file test_repl.c  Replication of dialogs through a real redis-server
 *
 * n1 writes its dialogs' snapshots and changes, signed; it applies n2's
 * newer versions only, drops what is not properly signed, loads the
 * snapshots at start, and writes an ending again for a new Redis server
 * that still has the call. The fixture (repl_peer.c) runs n1 here and
 * plays n2 over its own Redis connection.
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


static bool key_is(const char *type)
{
	return peer_cmd_int("EVAL %s 1 t:dlg:%016llx %s",
			    "return redis.call('TYPE', KEYS[1])['ok'] == "
			    "ARGV[1] and 1 or 0",
			    (unsigned long long)fixture_did, type) == 1;
}


static bool key_is_string(void)
{
	return key_is("string");
}


static bool one_stale(void)
{
	return fixture_repl_counter("stale") >= 1;
}


static bool two_sent(void)
{
	return fixture_repl_counter("sent") >= 2;
}


/* "<seal> <boot> <seq> <ms> <node> <header>\n<dialog>": the header's
   members, in this order, as receivers and older nodes read them */
static void assert_header(const char *msg, const struct dialog *dlg)
{
	struct pl hdr, ts;
	char want[256];

	ck_assert_int_eq(re_regex(msg, strlen(msg), "[^ ]+ [^ ]+ [^ ]+ [^ ]+ "
				  "[^ ]+ [^\n]+", NULL, NULL, NULL, NULL,
				  NULL, &hdr), 0);
	ck_assert_int_eq(re_regex(hdr.p, hdr.l, "\"ts\":[0-9]+", &ts), 0);
	(void)re_snprintf(want, sizeof(want), "{\"node\":\"n1\",\"tag\":"
			  "\"a\",\"epoch\":%llu,\"ver\":%llu,\"ev\":"
			  "\"created\",\"did\":\"%016llx\",\"ts\":%r}",
			  (unsigned long long)shtag_epoch("a"),
			  (unsigned long long)dlg->version,
			  (unsigned long long)dlg->did, &ts);
	ck_assert_int_eq(pl_strcmp(&hdr, want), 0);
}


START_TEST(t_replicates_changes)
{
	struct dialog *dlg, *copy = NULL;
	redisContext *sub;
	redisReply *r;
	struct pl rec, json;
	char m[8192], *own;

	fixture_node_start();

	sub = redisConnect("127.0.0.1", fixture_port);
	ck_assert(sub && !sub->err);
	r = redisCommand(sub, "SUBSCRIBE t:repl:a");
	freeReplyObject(r);

	fixture_did = 0x1122334455667788ULL;
	dlg = fixture_dialog(fixture_did, "a", "n1");
	ck_assert_int_eq(dialog_insert(dlg), 0);
	dialog_changed(dlg, DIALOG_EV_CREATED);
	ck_assert(fixture_run_until(fixture_key_exists, 2000));

	/* the snapshot is a record: exactly the dialog, signed */
	ck_assert(key_is("string"));
	peer_snapshot_rec(m, sizeof(m), fixture_did);
	pl_set_str(&rec, m);
	ck_assert_int_eq(cluster_record_open(&json, &rec), 0);
	ck_assert_int_eq(dialog_decode(&copy, json.p, json.l), 0);
	ck_assert(dialog_equal(dlg, copy));
	ck_assert_uint_eq(copy->version, dlg->version);
	mem_deref(copy);
	ck_assert_uint_eq(peer_snapshot_ver(fixture_did), dlg->version);
	own = peer_record(dlg);      /* the format, written independently */
	ck_assert_str_eq(m, own);
	mem_deref(own);

	/* the channel got the whole message, the same dialog after its
	   header */
	ck_assert_int_eq(redisGetReply(sub, (void **)&r), REDIS_OK);
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	ck_assert_uint_gt(r->element[2]->len, strlen(m));
	ck_assert_ptr_nonnull(strchr(r->element[2]->str, '\n'));
	ck_assert_str_eq(strchr(r->element[2]->str, '\n'), strchr(m, '\n'));
	assert_header(r->element[2]->str, dlg);
	freeReplyObject(r);

	/* TTL = dialog_timeout */
	ck_assert_int_gt(peer_cmd_int("PTTL t:dlg:%016llx",
				      (unsigned long long)fixture_did),
			 (long long)fixture_cfg.dialog_timeout * 1000 - 60000);

	dialog_end(dlg);
	mem_deref(dlg);
	ck_assert(fixture_run_until(two_sent, 2000));
	ck_assert(fixture_key_gone());

	redisFree(sub);
}
END_TEST

static bool peer_gone(void)
{
	return !dialog_lookup(peer_dlg->did);
}


START_TEST(t_applies_peer_newer_only)
{
	const struct dialog *d;

	fixture_node_start();

	peer_dlg = fixture_dialog(0x0badcafe00000001ULL, "b", "n2");
	peer_dlg->version = 3;
	peer_publish(peer_dlg, "confirmed", 0);
	ck_assert(fixture_run_until(peer_applied, 2000));
	d = dialog_lookup(peer_dlg->did);
	ck_assert(d->replica);
	ck_assert(dialog_equal(d, peer_dlg));

	/* an older version is ignored */
	peer_dlg->version = 2;
	fixture_set_id(peer_dlg, DIALOG_ID_TO_TAG, "old");
	peer_publish(peer_dlg, "updated", 0);
	fixture_run_for(150);
	d = dialog_lookup(peer_dlg->did);
	ck_assert_uint_eq(d->version, 3);
	ck_assert_str_eq(d->to_tag, "b2");

	/* a newer one replaces it */
	peer_dlg->version = 4;
	fixture_set_id(peer_dlg, DIALOG_ID_TO_TAG, "new");
	peer_publish(peer_dlg, "updated", 0);
	ck_assert(fixture_run_until(peer_applied, 2000));
	ck_assert(dialog_equal(dialog_lookup(peer_dlg->did), peer_dlg));
	ck_assert_int_gt(fixture_repl_counter("received"), 1);

	/* ended: gone */
	peer_dlg->version = 5;
	peer_publish(peer_dlg, "ended", 0);
	ck_assert(fixture_run_until(peer_gone, 2000));

	peer_dlg = mem_deref(peer_dlg);
}
END_TEST


static bool three_dropped(void)
{
	return fixture_repl_counter("dropped") >= 3;
}


START_TEST(t_drops_forged)
{
	char *msg;

	fixture_node_start();

	peer_dlg = fixture_dialog(0x0badcafe00000002ULL, "b", "n2");
	peer_dlg->version = 1;
	msg = peer_msg(peer_dlg, "confirmed", 0);

	/* one flipped hex digit of the signature */
	msg[0] = msg[0] == '0' ? '1' : '0';
	peer_cmd_ok("PUBLISH t:repl:b %s", msg);
	/* unsigned */
	memset(msg, '-', 64);
	peer_cmd_ok("PUBLISH t:repl:b %s", msg);
	/* not even the format */
	peer_cmd_ok("PUBLISH t:repl:b %s", "{\"node\":\"n2\"}");
	mem_deref(msg);

	ck_assert(fixture_run_until(three_dropped, 2000));
	/* each load reads them all (a tag's own load may follow the first) */
	ck_assert_int_ge(fixture_repl_counter("dropped"), 3);
	ck_assert_int_eq(fixture_repl_counter("dropped") % 3, 0);
	ck_assert_ptr_null(dialog_lookup(peer_dlg->did));

	/* the same message, properly signed, goes through */
	peer_publish(peer_dlg, "confirmed", 0);
	ck_assert(fixture_run_until(peer_applied, 2000));

	peer_dlg = mem_deref(peer_dlg);
}
END_TEST

/*
 * A fail-over to a replica that missed the last writes: a call that ended
 * just before is still in the new server's snapshots. The node writes its
 * ending again before it loads them, so the call does not come back.
 */
START_TEST(t_new_server_gets_recent_endings)
{
	struct dialog *dlg;
	char m[8192];

	fixture_node_start();

	dlg = fixture_dialog(0xcccc000000000001ULL, "a", "n1");
	ck_assert_int_eq(dialog_insert(dlg), 0);
	dialog_changed(dlg, DIALOG_EV_CONFIRMED);
	fixture_did = dlg->did;
	ck_assert(fixture_run_until(fixture_key_exists, 2000));
	peer_cmd_str(m, sizeof(m), "GET t:dlg:%016llx",
		(unsigned long long)fixture_did);

	dialog_end(dlg);
	mem_deref(dlg);
	ck_assert(fixture_run_until(fixture_key_gone, 2000));

	/* another server (the loop is not running: n1 cannot see it yet) */
	fixture_redis_stop();
	ck_assert(fixture_run_until(fixture_redis_down, 5000));
	fixture_redis_start();
	peer_cmd_ok("SET t:dlg:%016llx %s", (unsigned long long)fixture_did,
		    m);

	ck_assert(fixture_run_until(fixture_synced, 8000));
	ck_assert_ptr_null(dialog_lookup(fixture_did));
	ck_assert(fixture_key_gone());
}
END_TEST

START_TEST(t_loads_snapshots)
{
	struct dialog *p[50];
	uint32_t n = 0;

	/* every fifth as the release before stored it, every tenth as the
	   releases before dialog format 5 */
	for (unsigned i = 0; i < 50; i++) {
		p[i] = fixture_dialog(0xdddd000000000000ULL + i, "b", "n2");
		p[i]->version = 1 + i;
		if (!(i % 10))
			peer_snapshot_hash(p[i], 0);
		else if (!(i % 5))
			peer_snapshot_message(p[i], 0);
		else
			peer_snapshot(p[i]);
	}

	fixture_node_start();

	for (unsigned i = 0; i < 50; i++) {
		const struct dialog *d = dialog_lookup(p[i]->did);

		ck_assert_ptr_nonnull(d);
		ck_assert(d->replica);
		ck_assert(dialog_equal(d, p[i]));
		++n;
		mem_deref(p[i]);
	}
	ck_assert_uint_eq(n, 50);
	ck_assert_int_eq(fixture_repl_counter("snapshots_loaded"), 50);
}
END_TEST


static void set_snapshot(uint64_t did, const char *rec)
{
	char *val = NULL;

	ck_assert_int_eq(re_sdprintf(&val, "1 %s", rec), 0);
	peer_cmd_ok("SET t:dlg:%016llx %s", (unsigned long long)did, val);
	mem_deref(val);
}


/*
 * Snapshots whose record is forged, unsigned or cut are not loaded, and
 * are counted as dropped; a genuine one next to them is.
 */
START_TEST(t_drops_forged_snapshots)
{
	struct dialog *dlg[4];
	char *rec[4];

	for (unsigned i = 0; i < 4; i++) {
		dlg[i] = fixture_dialog(0xffff000000000000ULL + i, "b", "n2");
		dlg[i]->version = 1;
		rec[i] = peer_record(dlg[i]);
	}

	/* one byte of the dialog changed: the seal no longer matches */
	*strstr(rec[0], "alice") = 'A';
	/* unsigned */
	memset(rec[1], '-', CLUSTER_RECORD_SEAL);
	/* the seal without its last character: not a record, nor a message */
	memmove(rec[2] + CLUSTER_RECORD_SEAL - 1, rec[2] + CLUSTER_RECORD_SEAL,
		strlen(rec[2] + CLUSTER_RECORD_SEAL) + 1);
	for (unsigned i = 0; i < 4; i++)
		set_snapshot(dlg[i]->did, rec[i]);

	fixture_node_start();

	for (unsigned i = 0; i < 3; i++)
		ck_assert_ptr_null(dialog_lookup(dlg[i]->did));
	ck_assert_ptr_nonnull(dialog_lookup(dlg[3]->did));
	/* each load reads them all (a tag's own load may follow the first) */
	ck_assert_int_ge(fixture_repl_counter("dropped"), 3);
	ck_assert_int_eq(fixture_repl_counter("dropped") % 3, 0);

	for (unsigned i = 0; i < 4; i++) {
		mem_deref(rec[i]);
		mem_deref(dlg[i]);
	}
}
END_TEST


/*
 * A snapshot stored as a hash by a node of the release before: its
 * version still fences our write, which then replaces it with a string.
 */
START_TEST(t_write_replaces_hash_snapshot)
{
	struct dialog *dlg, *old;

	fixture_node_start();

	/* not above the hash's version: refused */
	dlg = fixture_dialog(0xeeee000000000001ULL, "a", "n1");
	fixture_did = dlg->did;
	old = fixture_dialog(dlg->did, "b", "n2");
	old->version = 9;
	peer_snapshot_hash(old, 0);
	dlg->version = 7;                  /* a change makes it 8 */
	dialog_changed(dlg, DIALOG_EV_UPDATED);
	ck_assert(fixture_run_until(one_stale, 2000));
	ck_assert(key_is("hash"));

	/* above it: replaced by a string */
	dlg->version = 9;
	dialog_changed(dlg, DIALOG_EV_UPDATED);
	ck_assert(fixture_run_until(key_is_string, 2000));
	ck_assert_uint_eq(peer_snapshot_ver(fixture_did), 10);

	mem_deref(old);
	mem_deref(dlg);
}
END_TEST


static Suite *repl_suite(void)
{
	Suite *s = suite_create("repl");
	TCase *tc = tcase_create("redis");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, t_replicates_changes);
	tcase_add_test(tc, t_applies_peer_newer_only);
	tcase_add_test(tc, t_drops_forged);
	tcase_add_test(tc, t_new_server_gets_recent_endings);
	tcase_add_test(tc, t_loads_snapshots);
	tcase_add_test(tc, t_drops_forged_snapshots);
	tcase_add_test(tc, t_write_replaces_hash_snapshot);
	suite_add_tcase(s, tc);

	return s;
}


int main(void)
{
	return fixture_main(repl_suite());
}
