"""test_rehome_failover.py  Two nodes: node 1 dies, node 2 takes its calls.

50 live calls go through node 1 (replicated to node 2 through Redis),
node 1 is killed with SIGKILL, node 2 sees it down and `rehomectl rehome
service` moves every call to node 2: each endpoint gets a re-INVITE with
node 2's Contact. Then the calls end normally, caller or callee hanging
up: 50/50 calls end with BYE/200 at both ends (sipp counts a call as
successful only then), and each endpoint saw strictly increasing CSeqs
in every call.

The metrics follow: node 2 sees node 1 up, then down
(rehome_cluster_node_up); node 1's calls are protected while node 2 is
there, and node 2's are not once node 1 is gone
(rehome_dialogs_unprotected{reason="no_backup"}); the moves are counted
and timed (rehome_calls_rehomed_total, rehome_call_rehome_duration_seconds).
"""
import harness as h
from harness import metrics as hm
from harness import nodes as lib

t = h.Test(__file__)

CALLS = 50
# long enough for the test's steps, which take SLOW times longer
TALK_MS = int(h.slow(7000))


def protected_then_not(ctx, node1, node2):
    """node1's calls have a backup in node2; node1 is killed: node2 sees
    it down, and the calls it now serves have no backup."""
    m1, m2 = hm.scrape(node1), hm.scrape(node2)
    assert m1.value('rehome_dialogs', shtag='service',
                    state='confirmed') == CALLS, m1.text
    assert m1.sum('rehome_dialogs_unprotected') == 0, m1.text
    assert m2.value('rehome_dialog_replicas', shtag='service') == CALLS
    for m in (m1, m2):
        assert m.value('rehome_redis_up') == 1, m.text
        assert m.value('rehome_cluster_node_up', node='node1') == 1, m.text
        assert m.value('rehome_cluster_node_up', node='node2') == 1, m.text
    buckets, total, count = m2.histogram('rehome_repl_lag_seconds')
    assert count >= CALLS and total > 0, m2.text
    assert buckets[-1] == (float('inf'), count), buckets

    lib.kill(ctx, node1)
    assert h.wait_until(lambda: lib.node_state(node2, 'node1') == 'down',
                        5), lib.status(node2)
    m2 = hm.scrape(node2)
    assert m2.value('rehome_cluster_node_up', node='node1') == 0, m2.text
    assert m2.value('rehome_cluster_node_up', node='node2') == 1, m2.text


def rehomes_counted(node2):
    """Every call moved, counted and timed; node2 serves them (those not
    ended yet) without a backup."""
    m = hm.scrape(node2)
    moved = m.value('rehome_calls_rehomed_total', outcome='moved')
    assert moved == CALLS, 'metric: %s moved' % moved
    buckets, total, count = m.histogram(
        'rehome_call_rehome_duration_seconds', outcome='moved')
    assert count == CALLS and buckets[-1][1] == CALLS, m.text
    assert 0 < total < CALLS * 32, total
    alone = m.value('rehome_dialogs_unprotected', reason='no_backup')
    assert 0 < alone <= CALLS, m.text
    assert m.sum('rehome_dialogs_unprotected') == alone, m.text


def failover(ctx, uac_xml, uas_xml, caller_hangs_up):
    uas = ctx.sipp(uas_xml, ip=h.CALLEE_IP, calls=CALLS,
                   duration=0 if caller_hangs_up else TALK_MS)
    node1, node2 = lib.cluster(ctx, uas.target)
    uac = ctx.sipp(uac_xml, ip=h.CALLER_IP, remote=node1.sip_addr,
                   calls=CALLS, rate=100,
                   duration=TALK_MS if caller_hangs_up else 0)
    uas.start()
    uac.start()

    lib.wait_confirmed(node1, CALLS)
    assert h.wait_until(lambda: lib.replicas(node2) >= CALLS, 5), \
        node2.dialog_counts()
    protected_then_not(ctx, node1, node2)

    rc, out, err = lib.rehomectl(node2, 'rehome', 'service')
    assert rc == 0, 'rehomectl: %d\n%s%s' % (rc, out, err)
    assert '%d moved, 0 failed' % CALLS in out, out
    rehomes_counted(node2)

    caller, callee = uac.result(), uas.result(timeout=10)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()

    for sipp in (uac, uas):
        reinvites = [m for _, m in lib.received(sipp, 'INVITE')
                     if node2.sip_addr in (lib.contact_uri(m) or '')]
        assert len(reinvites) == CALLS, '%s: %d re-INVITEs from node2' % (
            sipp.name, len(reinvites))
        bad = lib.per_call_cseqs_ok(sipp)
        assert not bad, '%s: CSeqs not increasing in %s' % (sipp.name, bad)

    byes = callee.select('received' if caller_hangs_up else 'sent', 'BYE')
    assert len(byes) == CALLS, '%d BYEs' % len(byes)
    assert h.wait_until(lambda: node2.active_dialogs() == 0, 5), \
        node2.dialog_counts()


@t.test
def caller_hangs_up(ctx):
    failover(ctx, 'uac.xml', 'uas.xml', True)


@t.test
def callee_hangs_up(ctx):
    failover(ctx, 'uac_wait_bye.xml', 'uas_hangup.xml', False)


t.main()
