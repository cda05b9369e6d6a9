/**
 * @file test_dialog.c  Unit tests of the dialog table, its transitions and lock
 *
 * Each test gets a fresh table (checked fixture) and an observer that
 * records what it was told, so notifications can be counted exactly.
 */
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include "cseq.h"
#include "dialog.h"

enum { EV_MAX = 8 };

static struct {
	unsigned calls;
	enum dialog_event evs[EV_MAX];   /* the first EV_MAX, in order */
	enum dialog_event last_ev;
	struct dialog *last_dlg;
	bool in_table;          /* was the dialog still findable when told */
} seen;


static void observer(struct dialog *dlg, enum dialog_event ev)
{
	if (seen.calls < EV_MAX)
		seen.evs[seen.calls] = ev;
	seen.calls++;
	seen.last_ev = ev;
	seen.last_dlg = dlg;
	seen.in_table = dialog_lookup(dlg->did) == dlg;
}


static void setup(void)
{
	memset(&seen, 0, sizeof(seen));
	ck_assert_int_eq(dialog_table_init(4), 0);
	dialog_set_observer(observer);
}


static void teardown(void)
{
	dialog_table_close();
}


static struct dialog *new_dialog(uint64_t did)
{
	struct dialog *dlg = NULL;

	ck_assert_int_eq(dialog_alloc(&dlg, did), 0);
	ck_assert_ptr_nonnull(dlg);
	return dlg;
}


START_TEST(test_alloc_defaults)
{
	struct dialog *dlg = new_dialog(0x1234);
	uint64_t now = dialog_now();

	ck_assert_uint_eq(dlg->did, 0x1234);
	ck_assert_int_eq(dlg->state, DIALOG_EARLY);
	ck_assert_uint_le(dlg->created, now);
	ck_assert_uint_ge(dlg->created + 1000, now);
	ck_assert_uint_eq(dlg->updated, dlg->created);
	ck_assert_int_eq(dlg->leg[LEG_CALLER].tp, SIP_TRANSP_UDP);
	ck_assert_int_eq(dlg->leg[LEG_CALLEE].tp, SIP_TRANSP_UDP);
	ck_assert_ptr_null(dlg->callid);
	mem_deref(dlg);

	ck_assert_int_eq(dialog_alloc(&dlg, 0), EINVAL);
	ck_assert_int_eq(dialog_alloc(NULL, 1), EINVAL);
}
END_TEST


START_TEST(test_table_init_twice)
{
	ck_assert_int_eq(dialog_table_init(4), EALREADY);
}
END_TEST


START_TEST(test_insert_lookup_remove)
{
	struct dialog *a = new_dialog(0x100000001ULL);
	struct dialog *b = new_dialog(0x200000001ULL);  /* same low bits */

	ck_assert_uint_eq(dialog_count(), 0);
	ck_assert_int_eq(dialog_insert(a), 0);
	ck_assert_int_eq(dialog_insert(b), 0);
	ck_assert_uint_eq(dialog_count(), 2);

	/* inserting the same dialog again changes nothing */
	ck_assert_int_eq(dialog_insert(a), 0);
	ck_assert_uint_eq(dialog_count(), 2);

	ck_assert_ptr_eq(dialog_lookup(0x100000001ULL), a);
	ck_assert_ptr_eq(dialog_lookup(0x200000001ULL), b);
	ck_assert_ptr_null(dialog_lookup(0x300000001ULL));

	dialog_remove(a);
	ck_assert_uint_eq(dialog_count(), 1);
	ck_assert_ptr_null(dialog_lookup(0x100000001ULL));
	ck_assert_ptr_eq(dialog_lookup(0x200000001ULL), b);

	/* removing twice is harmless */
	dialog_remove(a);
	ck_assert_uint_eq(dialog_count(), 1);

	mem_deref(a);
	mem_deref(b);   /* the table still holds b */
	ck_assert_uint_eq(dialog_lookup(0x200000001ULL)->did, 0x200000001ULL);
}
END_TEST


START_TEST(test_insert_refuses_duplicate_did)
{
	struct dialog *a = new_dialog(77), *b = new_dialog(77);

	ck_assert_int_eq(dialog_insert(a), 0);
	ck_assert_int_eq(dialog_insert(b), EEXIST);
	ck_assert_uint_eq(dialog_count(), 1);
	ck_assert_ptr_eq(dialog_lookup(77), a);

	mem_deref(a);
	mem_deref(b);
}
END_TEST


START_TEST(test_table_keeps_reference)
{
	struct dialog *dlg = new_dialog(5);

	dialog_insert(dlg);
	mem_deref(dlg);
	ck_assert_ptr_eq(dialog_lookup(5), dlg);
	ck_assert_int_eq(dialog_set_id(dlg, DIALOG_ID_CALLID,
				       &(struct pl)PL("x")), 0);

	/* teardown's dialog_table_close frees it (ASan checks) */
}
END_TEST


static bool count_handler(struct dialog *dlg, void *arg)
{
	unsigned *n = arg;
	(void)dlg;

	++*n;
	return false;
}


static bool find_handler(struct dialog *dlg, void *arg)
{
	return dlg->did == *(uint64_t *)arg;
}


START_TEST(test_apply)
{
	uint64_t want = 13;
	unsigned n = 0;

	for (uint64_t did = 1; did <= 20; did++) {
		struct dialog *dlg = new_dialog(did);

		dialog_insert(dlg);
		mem_deref(dlg);
	}
	ck_assert_uint_eq(dialog_count(), 20);

	ck_assert_ptr_null(dialog_apply(count_handler, &n));
	ck_assert_uint_eq(n, 20);

	ck_assert_ptr_eq(dialog_apply(find_handler, &want), dialog_lookup(13));
	ck_assert_uint_eq(dialog_apply(find_handler, &want)->did, 13);

	ck_assert_ptr_null(dialog_apply(NULL, NULL));
}
END_TEST


START_TEST(test_changed_bumps_and_notifies)
{
	struct dialog *dlg = new_dialog(9);

	dialog_insert(dlg);
	dlg->updated = 0;

	dialog_changed(dlg, DIALOG_EV_CONFIRMED);
	ck_assert_uint_eq(dlg->version, 1);
	ck_assert_uint_gt(dlg->updated, 0);
	ck_assert_uint_eq(seen.calls, 1);
	ck_assert_int_eq(seen.last_ev, DIALOG_EV_CONFIRMED);
	ck_assert_ptr_eq(seen.last_dlg, dlg);

	dialog_changed(dlg, DIALOG_EV_UPDATED);
	ck_assert_uint_eq(dlg->version, 2);
	ck_assert_uint_eq(seen.calls, 2);

	mem_deref(dlg);
}
END_TEST


START_TEST(test_end_notifies_once_and_removes)
{
	struct dialog *dlg = new_dialog(11);

	dialog_insert(dlg);

	dialog_end(dlg);
	ck_assert_uint_eq(seen.calls, 1);
	ck_assert_int_eq(seen.last_ev, DIALOG_EV_ENDED);
	ck_assert_ptr_eq(seen.last_dlg, dlg);
	ck_assert(seen.in_table);   /* told before it leaves */
	ck_assert_int_eq(dlg->state, DIALOG_ENDED);
	ck_assert_ptr_null(dialog_lookup(11));
	ck_assert_uint_eq(dialog_count(), 0);

	dialog_end(dlg);
	ck_assert_uint_eq(seen.calls, 1);

	mem_deref(dlg);
}
END_TEST


START_TEST(test_end_only_table_reference)
{
	struct dialog *dlg = new_dialog(12);

	dialog_insert(dlg);
	mem_deref(dlg);

	/* dialog_end must not touch the dialog after the last deref */
	dialog_end(dialog_lookup(12));
	ck_assert_uint_eq(seen.calls, 1);
	ck_assert_uint_eq(dialog_count(), 0);
}
END_TEST


START_TEST(test_replica_does_not_notify)
{
	struct dialog *dlg = new_dialog(21);

	dialog_hold(dlg);
	ck_assert(dlg->replica);
	dialog_insert(dlg);

	dialog_changed(dlg, DIALOG_EV_UPDATED);
	ck_assert_uint_eq(dlg->version, 1);
	dialog_end(dlg);
	ck_assert_uint_eq(seen.calls, 0);
	ck_assert_ptr_null(dialog_lookup(21));

	mem_deref(dlg);
}
END_TEST


START_TEST(test_no_observer)
{
	struct dialog *dlg = new_dialog(22);

	dialog_set_observer(NULL);
	dialog_insert(dlg);
	dialog_changed(dlg, DIALOG_EV_UPDATED);
	dialog_end(dlg);
	ck_assert_uint_eq(seen.calls, 0);
	ck_assert_uint_eq(dialog_count(), 0);

	mem_deref(dlg);
}
END_TEST


/* A dialog started in the table, as the proxy makes one */
static struct dialog *started(uint64_t did)
{
	struct dialog *dlg = new_dialog(did);

	ck_assert_int_eq(dialog_start(dlg), 0);
	mem_deref(dlg);   /* the table's reference is enough */
	return dlg;
}


START_TEST(test_start)
{
	struct dialog *dlg = new_dialog(31), *twin = new_dialog(31);

	ck_assert_int_eq(dialog_start(dlg), 0);
	ck_assert_ptr_eq(dialog_lookup(31), dlg);
	ck_assert_uint_eq(seen.calls, 1);
	ck_assert_int_eq(seen.last_ev, DIALOG_EV_CREATED);
	ck_assert(seen.in_table);
	ck_assert_uint_eq(dlg->version, 1);

	/* once only, and never for a did the table holds */
	ck_assert_int_eq(dialog_start(dlg), EPROTO);
	ck_assert_int_eq(dialog_start(twin), EEXIST);
	ck_assert_int_eq(dialog_start(NULL), EINVAL);
	ck_assert_uint_eq(seen.calls, 1);
	ck_assert_uint_eq(dlg->version, 1);

	mem_deref(twin);
	mem_deref(dlg);
}
END_TEST


START_TEST(test_start_refuses_confirmed)
{
	struct dialog *dlg = started(32), *copy = new_dialog(33);

	ck_assert_int_eq(dialog_confirm(dlg), 0);
	copy->state = DIALOG_CONFIRMED;   /* e.g. decoded from a peer */
	ck_assert_int_eq(dialog_start(copy), EPROTO);
	ck_assert_ptr_null(dialog_lookup(33));
	ck_assert_uint_eq(seen.calls, 2);

	mem_deref(copy);
}
END_TEST


START_TEST(test_confirm_then_end)
{
	struct dialog *dlg = started(41);

	mem_ref(dlg);
	ck_assert_int_eq(dialog_confirm(dlg), 0);
	ck_assert_int_eq(dlg->state, DIALOG_CONFIRMED);
	ck_assert_uint_eq(seen.calls, 2);
	ck_assert_int_eq(seen.last_ev, DIALOG_EV_CONFIRMED);
	ck_assert_uint_eq(dlg->version, 2);

	ck_assert_int_eq(dialog_end(dlg), 0);
	ck_assert_int_eq(dlg->state, DIALOG_ENDED);
	ck_assert_uint_eq(seen.calls, 3);
	ck_assert_int_eq(seen.last_ev, DIALOG_EV_ENDED);
	ck_assert(seen.in_table);
	ck_assert_ptr_null(dialog_lookup(41));

	mem_deref(dlg);
}
END_TEST


START_TEST(test_early_end)
{
	struct dialog *dlg = started(42);

	ck_assert_int_eq(dialog_end(dlg), 0);
	ck_assert_uint_eq(seen.calls, 2);
	ck_assert_int_eq(seen.evs[0], DIALOG_EV_CREATED);
	ck_assert_int_eq(seen.evs[1], DIALOG_EV_ENDED);
	ck_assert_uint_eq(dialog_count(), 0);
}
END_TEST


START_TEST(test_illegal_transitions)
{
	struct dialog *dlg = started(43);
	uint64_t ver;

	mem_ref(dlg);
	ck_assert_int_eq(dialog_confirm(dlg), 0);
	ver = dlg->version;

	/* confirmed is not confirmed again */
	ck_assert_int_eq(dialog_confirm(dlg), EPROTO);
	ck_assert_int_eq(dlg->state, DIALOG_CONFIRMED);
	ck_assert_uint_eq(dlg->version, ver);

	/* nothing leaves ended */
	ck_assert_int_eq(dialog_end(dlg), 0);
	ver = dlg->version;
	ck_assert_int_eq(dialog_confirm(dlg), EPROTO);
	ck_assert_int_eq(dialog_end(dlg), EPROTO);
	ck_assert_int_eq(dlg->state, DIALOG_ENDED);

	/* refused moves change nothing and tell nobody */
	ck_assert_uint_eq(dlg->version, ver);
	ck_assert_uint_eq(seen.calls, 3);

	ck_assert_int_eq(dialog_confirm(NULL), EINVAL);
	ck_assert_int_eq(dialog_end(NULL), EINVAL);

	mem_deref(dlg);
}
END_TEST


START_TEST(test_to_tag_fixed_once_confirmed)
{
	struct dialog *dlg = started(44);
	struct pl t1 = PL("t1"), t2 = PL("t2");

	/* early: a later provisional or the 2xx may bring another tag */
	ck_assert_int_eq(dialog_set_to_tag(dlg, &t1), 0);
	ck_assert_str_eq(dlg->to_tag, "t1");
	ck_assert_int_eq(dialog_set_to_tag(dlg, &t2), 0);
	ck_assert_str_eq(dlg->to_tag, "t2");

	ck_assert_int_eq(dialog_confirm(dlg), 0);
	ck_assert_int_eq(dialog_set_to_tag(dlg, &t1), EPROTO);
	ck_assert_str_eq(dlg->to_tag, "t2");

	/* a leaf change, announced by its caller */
	ck_assert_uint_eq(seen.calls, 2);
}
END_TEST


START_TEST(test_observer_once_per_change)
{
	static const enum dialog_event want[] = {
		DIALOG_EV_CREATED, DIALOG_EV_UPDATED, DIALOG_EV_CONFIRMED,
		DIALOG_EV_UPDATED, DIALOG_EV_ENDED,
	};
	struct dialog *dlg = started(45);

	dialog_changed(dlg, DIALOG_EV_UPDATED);
	(void)dialog_confirm(dlg);
	(void)dialog_confirm(dlg);       /* refused: not a change */
	dialog_changed(dlg, DIALOG_EV_UPDATED);
	(void)dialog_end(dlg);
	(void)dialog_end(dialog_lookup(45));   /* gone: NULL */

	ck_assert_uint_eq(seen.calls, ARRAY_SIZE(want));
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		ck_assert_int_eq(seen.evs[i], want[i]);
}
END_TEST


START_TEST(test_serve_and_hold)
{
	struct dialog *dlg = started(46);
	char *owner;

	ck_assert_int_eq(dialog_serve(dlg, "n1"), 0);
	ck_assert_str_eq(dlg->owner, "n1");
	ck_assert(!dlg->replica);
	owner = dlg->owner;

	dialog_hold(dlg);
	ck_assert(dlg->replica);
	ck_assert_str_eq(dlg->owner, "n1");

	/* a replica's changes are not announced */
	dialog_changed(dlg, DIALOG_EV_UPDATED);
	ck_assert_uint_eq(seen.calls, 1);

	/* taken over by another node, then adopted back */
	ck_assert_int_eq(dialog_serve(dlg, "n2"), 0);
	ck_assert_str_eq(dlg->owner, "n2");
	ck_assert(!dlg->replica);
	ck_assert_int_eq(dialog_serve(dlg, "n1"), 0);
	ck_assert_ptr_eq(dlg->owner, owner);   /* the one shared atom */

	/* the caller announces; serving alone tells nobody */
	ck_assert_uint_eq(seen.calls, 1);

	ck_assert_int_eq(dialog_serve(dlg, NULL), EINVAL);
	ck_assert_int_eq(dialog_serve(dlg, ""), EINVAL);
	ck_assert_int_eq(dialog_serve(NULL, "n1"), EINVAL);
	ck_assert_str_eq(dlg->owner, "n1");
}
END_TEST


/*
 * A node taking a dialog from another owner jumps its version ahead: the
 * owner's late changes (made before it heard of the take, from the same
 * version) must be older than the taker's copy. Adopting our own replica
 * (from a previous run) is no take: no jump.
 */
START_TEST(test_serve_taken_jumps_version)
{
	struct dialog *dlg = started(48);
	uint64_t ver, late;

	ck_assert_int_eq(dialog_serve(dlg, "n1"), 0);
	dialog_changed(dlg, DIALOG_EV_UPDATED);
	dialog_hold(dlg);
	ver = dlg->version;
	late = ver + 3;     /* what n1 may still write meanwhile */

	ck_assert_int_eq(dialog_serve(dlg, "n2"), 0);
	dialog_changed(dlg, DIALOG_EV_UPDATED);
	ck_assert_uint_gt(dlg->version, late);
	ck_assert_uint_eq(dlg->version, ver + DIALOG_TAKE_GAP + 1);

	dialog_hold(dlg);
	ver = dlg->version;
	ck_assert_int_eq(dialog_serve(dlg, "n2"), 0);
	ck_assert_uint_eq(dlg->version, ver);
}
END_TEST


START_TEST(test_serve_refused_when_ended)
{
	struct dialog *dlg = started(47);

	mem_ref(dlg);
	dialog_hold(dlg);
	(void)dialog_end(dlg);
	ck_assert_int_eq(dialog_serve(dlg, "n1"), EPROTO);
	ck_assert(dlg->replica);
	ck_assert_ptr_null(dlg->owner);

	mem_deref(dlg);
}
END_TEST


static struct dialog_ok *ok_told;   /* what the ok handler was given */


static void never(void *arg)
{
	(void)arg;
	ck_abort_msg("a timer of a unit test fired");
}


static void ok_handler(struct dialog_ok *ok)
{
	ok_told = ok;
	tmr_start(&ok->tmr, 60000, never, NULL);
}


/** A 2xx (buffer mb) kept for leg, answering CSeq cseq, owing ACK ack */
static struct dialog_ok *keep_ok(struct dialog *dlg, enum dialog_leg_id leg,
				 struct mbuf *mb, uint32_t cseq, uint32_t ack)
{
	struct dialog_ok tmpl, *ok = NULL;

	memset(&tmpl, 0, sizeof(tmpl));
	tmpl.mb = mb;
	tmpl.tp = SIP_TRANSP_UDP;
	tmpl.cseq = cseq;
	tmpl.ack = ack;
	tmpl.until = 99;
	tmpl.shared = cseq > 1;
	ck_assert_int_eq(sa_set_str(&tmpl.dst, "127.0.0.1", 5060), 0);
	ck_assert_int_eq(dialog_ok_keep(&ok, dlg, leg, &tmpl), 0);

	return ok;
}


START_TEST(test_ok_keep_and_ack)
{
	struct dialog *dlg = started(48);
	struct mbuf *a = mbuf_alloc(16), *b = mbuf_alloc(16);
	struct dialog_ok *ok, tmpl;
	uint32_t ack = 0;

	ok = keep_ok(dlg, LEG_CALLER, a, 1, 7);
	ck_assert_ptr_eq(dialog_ok_kept(dlg, LEG_CALLER), ok);
	ck_assert_ptr_eq(ok->mb, a);
	ck_assert_ptr_eq(ok->dlg, dlg);
	ck_assert_int_eq(ok->leg, LEG_CALLER);
	ck_assert_uint_eq(ok->cseq, 1);
	ck_assert_uint_eq(ok->ack, 7);
	ck_assert_uint_eq(ok->until, 99);
	ck_assert(!ok->shared);
	ck_assert_uint_eq(mem_nrefs(a), 2);

	/* its ACK is overdue: replicated from now on */
	dialog_ok_share(ok);
	ck_assert(ok->shared);
	dialog_ok_share(NULL);

	/* a newer 2xx to the leg replaces the kept one, which lets go */
	ok = keep_ok(dlg, LEG_CALLER, b, 2, 8);
	ck_assert(ok->shared);
	ck_assert_uint_eq(mem_nrefs(a), 1);
	ck_assert_ptr_eq(dialog_ok_kept(dlg, LEG_CALLER)->mb, b);

	memset(&tmpl, 0, sizeof(tmpl));
	ck_assert_int_eq(dialog_ok_keep(NULL, dlg, LEG_CALLER, &tmpl), EINVAL);
	ck_assert_int_eq(dialog_ok_keep(NULL, NULL, LEG_CALLER, ok), EINVAL);

	/* only the ACK of that INVITE, from that leg, matches */
	ck_assert_int_eq(dialog_ack(dlg, LEG_CALLER, 1, &ack), ENOENT);
	ck_assert_int_eq(dialog_ack(dlg, LEG_CALLEE, 2, &ack), ENOENT);
	ck_assert(!dlg->acked);
	ck_assert_int_eq(dialog_ack(dlg, LEG_CALLER, 2, &ack), 0);
	ck_assert_uint_eq(ack, 8);
	ck_assert(dlg->acked);
	ck_assert_ptr_null(dialog_ok_kept(dlg, LEG_CALLER));
	ck_assert_uint_eq(mem_nrefs(b), 1);
	ck_assert_int_eq(dialog_ack(dlg, LEG_CALLER, 2, &ack), ENOENT);
	ck_assert_int_eq(dialog_ack(NULL, LEG_CALLER, 2, &ack), EINVAL);

	/* the callee's ACK does not make the call "acked here" */
	dlg->acked = false;
	(void)keep_ok(dlg, LEG_CALLEE, a, 5, 6);
	ck_assert_int_eq(dialog_ack(dlg, LEG_CALLEE, 5, NULL), 0);
	ck_assert(!dlg->acked);

	/* announced by whoever relays the ACK, not here */
	ck_assert_uint_eq(seen.calls, 1);

	(void)keep_ok(dlg, LEG_CALLER, a, 3, 3);
	dialog_ok_clear(dlg, LEG_CALLER);
	ck_assert_ptr_null(dialog_ok_kept(dlg, LEG_CALLER));
	ck_assert_uint_eq(mem_nrefs(a), 1);

	/* a call that ends forgets its 2xx (ASan checks the buffers) */
	(void)keep_ok(dlg, LEG_CALLER, a, 4, 4);
	(void)keep_ok(dlg, LEG_CALLEE, b, 4, 4);
	mem_ref(dlg);
	(void)dialog_end(dlg);
	ck_assert_ptr_null(dialog_ok_kept(dlg, LEG_CALLER));
	ck_assert_ptr_null(dialog_ok_kept(dlg, LEG_CALLEE));
	ck_assert_uint_eq(mem_nrefs(a), 1);
	mem_deref(dlg);

	mem_deref(b);
	mem_deref(a);
}
END_TEST


START_TEST(test_ok_follows_serving)
{
	struct dialog *dlg = started(50);
	struct mbuf *mb = mbuf_alloc(16);
	struct dialog_ok *ok;

	dialog_set_ok_handler(ok_handler);
	ok_told = NULL;

	/* kept on a dialog served here: the caller resends it, not a door */
	ok = keep_ok(dlg, LEG_CALLEE, mb, 1, 1);
	ck_assert_ptr_null(ok_told);
	tmr_start(&ok->tmr, 60000, never, NULL);

	/* held for another node: no resending here */
	dialog_hold(dlg);
	ck_assert(!tmr_isrunning(&ok->tmr));
	ck_assert_ptr_null(ok_told);

	/* served here again: the handler resumes it */
	ck_assert_int_eq(dialog_serve(dlg, "n1"), 0);
	ck_assert_ptr_eq(ok_told, ok);
	ck_assert(tmr_isrunning(&ok->tmr));

	/* serving what is served already tells nobody again */
	ok_told = NULL;
	ck_assert_int_eq(dialog_serve(dlg, "n2"), 0);
	ck_assert_ptr_null(ok_told);

	/* no handler, no call */
	dialog_hold(dlg);
	dialog_set_ok_handler(NULL);
	ck_assert_int_eq(dialog_serve(dlg, "n1"), 0);
	ck_assert_ptr_null(ok_told);

	mem_deref(mb);
}
END_TEST


START_TEST(test_lock)
{
	struct dialog *dlg = started(49);
	int call, job;

	ck_assert(!dialog_locked(dlg));
	ck_assert_int_eq(dialog_lock(dlg, DIALOG_LOCK_REHOME, &call), 0);
	ck_assert(dialog_locked(dlg));
	ck_assert(dialog_locked_by(dlg, DIALOG_LOCK_REHOME, &call));
	ck_assert(!dialog_locked_by(dlg, DIALOG_LOCK_HANDOFF, &call));
	ck_assert(!dialog_locked_by(dlg, DIALOG_LOCK_REHOME, &job));

	/* held: nobody takes it, not even its holder again */
	ck_assert_int_eq(dialog_lock(dlg, DIALOG_LOCK_HANDOFF, &job), EBUSY);
	ck_assert_int_eq(dialog_lock(dlg, DIALOG_LOCK_REHOME, &call), EBUSY);

	/* only the holder lets go */
	ck_assert_int_eq(dialog_unlock(dlg, &job), EPERM);
	ck_assert(dialog_locked_by(dlg, DIALOG_LOCK_REHOME, &call));
	ck_assert_int_eq(dialog_unlock(dlg, &call), 0);
	ck_assert(!dialog_locked(dlg));
	ck_assert_int_eq(dialog_unlock(dlg, &call), EPERM);

	ck_assert_int_eq(dialog_lock(dlg, DIALOG_LOCK_HANDOFF, &job), 0);
	ck_assert(dialog_locked_by(dlg, DIALOG_LOCK_HANDOFF, &job));

	/* node-local: nothing announced */
	ck_assert_uint_eq(seen.calls, 1);
	ck_assert_uint_eq(dlg->version, 1);
}
END_TEST


START_TEST(test_lock_args)
{
	struct dialog *dlg = started(50);
	int holder;

	ck_assert_int_eq(dialog_lock(dlg, DIALOG_LOCK_NONE, &holder), EINVAL);
	ck_assert_int_eq(dialog_lock(dlg, DIALOG_LOCK_REHOME, NULL), EINVAL);
	ck_assert_int_eq(dialog_lock(NULL, DIALOG_LOCK_REHOME, &holder),
			 EINVAL);
	ck_assert(!dialog_locked(dlg));
	ck_assert(!dialog_locked_by(dlg, DIALOG_LOCK_NONE, NULL));

	ck_assert_int_eq(dialog_unlock(dlg, NULL), EINVAL);
	ck_assert_int_eq(dialog_unlock(NULL, &holder), EINVAL);
	ck_assert(!dialog_locked(NULL));
	ck_assert(!dialog_locked_by(NULL, DIALOG_LOCK_REHOME, &holder));
}
END_TEST


START_TEST(test_lock_break)
{
	struct dialog *dlg = started(51);
	int call;

	ck_assert_int_eq(dialog_lock(dlg, DIALOG_LOCK_REHOME, &call), 0);

	/* a BYE: the holder finds its lock gone, and cannot free another's */
	dialog_lock_break(dlg);
	ck_assert(!dialog_locked(dlg));
	ck_assert(!dialog_locked_by(dlg, DIALOG_LOCK_REHOME, &call));
	ck_assert_int_eq(dialog_unlock(dlg, &call), EPERM);
	dialog_lock_break(NULL);
}
END_TEST


START_TEST(test_callee_callid)
{
	struct dialog *dlg = new_dialog(0xfedcba9876543210ULL);
	char buf[40];

	dlg->callid_key = 0x0123456789abcdefULL;
	ck_assert_int_eq(dialog_callee_callid(buf, sizeof(buf), dlg), 0);
	ck_assert_str_eq(buf, "rh-fedcba9876543210-0123456789abcdef");
	ck_assert_int_ne(dialog_callee_callid(buf, 36, dlg), 0);
	ck_assert_int_ne(dialog_callee_callid(buf, 8, dlg), 0);
	ck_assert_int_eq(dialog_callee_callid(NULL, 8, dlg), EINVAL);

	/* a dialog from before keys keeps the Call-ID its callee knows */
	dlg->callid_key = 0;
	ck_assert_int_eq(dialog_callee_callid(buf, sizeof(buf), dlg), 0);
	ck_assert_str_eq(buf, "rh-fedcba9876543210");

	mem_deref(dlg);
}
END_TEST


/*
 * Each new dialog draws its own keys: non-zero, different from each other
 * and from the did, and different in the next dialog, so that nothing one
 * endpoint is sent gives a value of the other leg's.
 */
START_TEST(test_new_dialog_keys)
{
	struct dialog *a = new_dialog(0x1234), *b = new_dialog(0x1234);
	uint64_t v[] = {
		a->did, a->callid_key, a->leg[LEG_CALLER].contact_key,
		a->leg[LEG_CALLEE].contact_key, b->callid_key,
		b->leg[LEG_CALLER].contact_key, b->leg[LEG_CALLEE].contact_key,
	};

	for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
		ck_assert_uint_ne(v[i], 0);
		for (size_t j = 0; j < i; j++)
			ck_assert_uint_ne(v[i], v[j]);
	}

	mem_deref(b);
	mem_deref(a);
}
END_TEST


START_TEST(test_from_tag)
{
	struct dialog *dlg = new_dialog(1);
	struct pl tag;

	ck_assert_int_eq(dialog_from_tag(dlg, &tag), EINVAL);

	ck_assert_int_eq(dialog_set_id(dlg, DIALOG_ID_FROM, &(struct pl)PL(
		"\"Alice\" <sip:alice@127.0.0.1;transport=udp>;tag=a73kszlfl")),
			 0);
	ck_assert_int_eq(dialog_from_tag(dlg, &tag), 0);
	ck_assert_int_eq(pl_strcmp(&tag, "a73kszlfl"), 0);

	ck_assert_int_eq(dialog_set_id(dlg, DIALOG_ID_FROM, &(struct pl)PL(
		"<sip:bob@127.0.0.1>;x=1;tag=88;y=2")), 0);
	ck_assert_int_eq(dialog_from_tag(dlg, &tag), 0);
	ck_assert_int_eq(pl_strcmp(&tag, "88"), 0);

	ck_assert_int_eq(dialog_set_id(dlg, DIALOG_ID_FROM,
				       &(struct pl)PL("<sip:carol@127.0.0.1>")),
			 0);
	ck_assert_int_ne(dialog_from_tag(dlg, &tag), 0);

	mem_deref(dlg);
}
END_TEST


START_TEST(test_state_names)
{
	static const enum dialog_state all[] = {
		DIALOG_EARLY, DIALOG_CONFIRMED, DIALOG_ENDED
	};
	enum dialog_state st = DIALOG_ENDED;

	ck_assert_str_eq(dialog_state_name(DIALOG_EARLY), "early");
	ck_assert_str_eq(dialog_state_name(DIALOG_CONFIRMED), "confirmed");
	ck_assert_str_eq(dialog_state_name(DIALOG_ENDED), "ended");
	ck_assert_str_eq(dialog_state_name((enum dialog_state)42), "?");

	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		ck_assert_int_eq(dialog_state_decode(&st,
					dialog_state_name(all[i])), 0);
		ck_assert_int_eq(st, all[i]);
	}

	ck_assert_int_eq(dialog_state_decode(&st, "Early"), EINVAL);
	ck_assert_int_eq(dialog_state_decode(&st, "?"), EINVAL);
	ck_assert_int_eq(dialog_state_decode(&st, NULL), EINVAL);
	ck_assert_int_eq(st, DIALOG_ENDED);

	ck_assert_str_eq(dialog_leg_name(LEG_CALLER), "caller");
	ck_assert_str_eq(dialog_leg_name(LEG_CALLEE), "callee");
}
END_TEST


START_TEST(test_set_str)
{
	struct pl a = PL("sip:a@127.0.0.1"), b = PL("sip:b@127.0.0.1");
	struct pl empty = PL("");
	char *s = NULL;

	ck_assert_int_eq(dialog_set_str(&s, &a), 0);
	ck_assert_str_eq(s, "sip:a@127.0.0.1");
	ck_assert_int_eq(dialog_set_str(&s, &b), 0);
	ck_assert_str_eq(s, "sip:b@127.0.0.1");
	ck_assert_int_eq(dialog_set_str(&s, &empty), 0);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(dialog_set_str(&s, &a), 0);
	ck_assert_int_eq(dialog_set_str(&s, NULL), 0);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(dialog_set_str(NULL, &a), EINVAL);
}
END_TEST


static Suite *dialog_suite(void)
{
	Suite *s = suite_create("dialog");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_alloc_defaults);
	tcase_add_test(tc, test_table_init_twice);
	tcase_add_test(tc, test_insert_lookup_remove);
	tcase_add_test(tc, test_insert_refuses_duplicate_did);
	tcase_add_test(tc, test_table_keeps_reference);
	tcase_add_test(tc, test_apply);
	tcase_add_test(tc, test_changed_bumps_and_notifies);
	tcase_add_test(tc, test_end_notifies_once_and_removes);
	tcase_add_test(tc, test_end_only_table_reference);
	tcase_add_test(tc, test_replica_does_not_notify);
	tcase_add_test(tc, test_no_observer);
	tcase_add_test(tc, test_start);
	tcase_add_test(tc, test_start_refuses_confirmed);
	tcase_add_test(tc, test_confirm_then_end);
	tcase_add_test(tc, test_early_end);
	tcase_add_test(tc, test_illegal_transitions);
	tcase_add_test(tc, test_to_tag_fixed_once_confirmed);
	tcase_add_test(tc, test_observer_once_per_change);
	tcase_add_test(tc, test_serve_and_hold);
	tcase_add_test(tc, test_serve_refused_when_ended);
	tcase_add_test(tc, test_serve_taken_jumps_version);
	tcase_add_test(tc, test_ok_keep_and_ack);
	tcase_add_test(tc, test_ok_follows_serving);
	tcase_add_test(tc, test_lock);
	tcase_add_test(tc, test_lock_args);
	tcase_add_test(tc, test_lock_break);
	tcase_add_test(tc, test_callee_callid);
	tcase_add_test(tc, test_new_dialog_keys);
	tcase_add_test(tc, test_from_tag);
	tcase_add_test(tc, test_state_names);
	tcase_add_test(tc, test_set_str);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(dialog_suite());
}
