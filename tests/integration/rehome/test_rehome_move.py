"""test_rehome_move.py  Re-balance: node 1 hands 30% of its calls to node 2.

100 calls go through node 1; `rehomectl move service --to node2
--percent 30` on node 1 makes node 2 take exactly 30 of them (re-INVITEs
with node 2's Contact on both legs, under node 2's sub-tag) while the
other 70 stay on node 1 untouched. Then every caller hangs up: the BYE
of a moved call goes to node 2, the others to node 1, and all 100 calls
end with BYE/200 at both ends.
"""
import harness as h
from harness import nodes as lib

t = h.Test(__file__)

CALLS = 100
MOVED = 30


def served(node):
    counts = node.dialog_counts()
    return counts['confirmed']


@t.test
def move_30_percent(ctx):
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=CALLS)
    node1, node2 = lib.cluster(ctx, uas.target)
    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=node1.sip_addr,
                   calls=CALLS, rate=200, duration=int(h.slow(7000)))
    uas.start()
    uac.start()
    lib.wait_confirmed(node1, CALLS)

    rc, out, err = lib.rehomectl(node1, 'move', 'service', '--to', 'node2',
                                 '--percent', str(MOVED))
    assert rc == 0, 'rehomectl: %d\n%s%s' % (rc, out, err)
    assert '%d moved, 0 failed, of %d' % (MOVED, MOVED) in out, out

    # ownership: node 2 serves the 30, node 1 the 70 (the rest replicas)
    ok = h.wait_until(lambda: (served(node1), served(node2)) ==
                      (CALLS - MOVED, MOVED), 5)
    assert ok, (node1.dialog_counts(), node2.dialog_counts())

    caller, callee = uac.result(), uas.result(timeout=10)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()

    for sipp in (uac, uas):
        reinvites = lib.reinvites(sipp)
        from2 = {m.call_id for m in reinvites
                 if node2.sip_addr in (lib.contact_uri(m) or '')}
        assert len(from2) == MOVED == len(reinvites), \
            '%s: %d calls re-INVITEd by node2, %d re-INVITEs' % (
                sipp.name, len(from2), len(reinvites))
        bad = lib.per_call_cseqs_ok(sipp)
        assert not bad, '%s: CSeqs not increasing in %s' % (sipp.name, bad)

    moved = {m.call_id for m in lib.reinvites(uac)}
    byes = caller.select('sent', 'BYE')
    to2 = {m.call_id for m in byes if node2.sip_addr in m.start_line}
    to1 = {m.call_id for m in byes if node1.sip_addr in m.start_line}
    assert to2 == moved, 'BYEs to node2: %d, moved %d' % (len(to2),
                                                           len(moved))
    assert len(to1) == CALLS - MOVED, 'BYEs to node1: %d' % len(to1)

    for node in (node1, node2):
        assert h.wait_until(lambda: node.active_dialogs() == 0, 5), \
            node.dialog_counts()


t.main()
