"""test_rehome_drain_restart.py  A node restarted after a drain comes back empty.

30 calls (long, sipp) go through node1; `rehomectl drain --to node2`
hands every one to node2. node1 is then stopped cleanly (SIGTERM, as for
maintenance) and started again with the same config. It must come back
empty: it serves no dialog (it only holds node2's as replicas), it does
not drain any more (the flag is not kept across a restart), it takes new
calls again in its tag, and it never sends anything to the endpoints of
the drained calls, which all end normally through node2.
"""
import re

import harness as h
from harness import nodes as lib

t = h.Test(__file__)

CALLS = 30
# long enough for the test's steps, which take SLOW times longer
TALK_MS = int(h.slow(9000))


def served(node):
    return lib.status(node)['dialogs']['served']


@t.test
def restarted_after_drain_is_empty(ctx):
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=CALLS + 1, timeout=60)
    node1, node2 = lib.cluster(ctx, uas.target)
    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=node1.sip_addr,
                   calls=CALLS, rate=100, duration=TALK_MS, timeout=60)
    uas.start()
    uac.start()
    lib.wait_confirmed(node1, CALLS)

    rc, out, err = lib.rehomectl(node1, 'drain', '--to', 'node2')
    assert rc == 0 and '%d moved, 0 failed' % CALLS in out, (rc, out, err)
    assert served(node1) == 0 and served(node2) == CALLS

    node1.stop()
    assert node1.returncode == 0, node1.log_tail()
    mark = len(node1.log())

    def since_restart():
        return node1.log()[mark:]

    node1.start()     # (its log is appended to: wait for the new run)
    assert h.wait_until(lambda: re.search(r"node '.*' running",
                                          since_restart()), 10)
    assert h.wait_until(lambda: lib.synced(node1, 2), 10), \
        lib.status(node1)

    # empty: nothing of its own, node2's calls as replicas only
    counts = node1.dialog_counts()
    assert counts['served'] == 0, counts
    assert h.wait_until(lambda: lib.replicas(node1) == CALLS, 5), \
        node1.dialog_counts()
    assert served(node2) == CALLS
    st = lib.status(node1)
    assert st['rehome']['draining'] is False, st['rehome']
    holder = {x['name']: x['holder'] for x in st['shtags']}
    assert holder['service'] == 'node1', holder
    assert holder.get('service.node2') == 'node2', holder

    # it takes new calls again, in its own tag
    one = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=node1.sip_addr,
                   calls=1, rate=1, duration=500, timeout=30)
    one.start()
    assert one.result().ok, one.result().why()

    caller, callee = uac.result(), uas.result(timeout=10)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    byes = caller.select('sent', 'BYE')
    assert len(byes) == CALLS, len(byes)
    stray = [m.start_line for m in byes
             if node2.sip_addr not in m.start_line]
    assert not stray, 'BYEs not to node2: %s' % stray[:3]
    assert 'served unprotected' not in since_restart(), since_restart()
    for node in (node1, node2):
        assert h.wait_until(lambda: node.active_dialogs() == 0, 5), \
            node.dialog_counts()


t.main()
