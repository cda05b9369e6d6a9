"""test_rehome_drain.py  Drain: node 1 hands every call to node 2 while
new calls keep coming.

sipp places 80 calls at 20/s through node 1 (rehome_uac_drain.xml); each
rings for 1 s (rehome_uas.xml), then talks for 3 s. After 2.5 s
`rehomectl drain --to node2` runs on node 1. From then on node 1 answers
new INVITEs 503 with Retry-After and the caller places them again through
node 2; the calls node 1 carries move to node 2, and so do the ones
ringing at that moment, once answered. No call fails: all 80 end with
BYE/200 at both ends, every BYE reaches node 2, and node 1 ends up
serving nothing.
"""
import time

import harness as h
from harness import nodes as lib

t = h.Test(__file__)

CALLS = 80
RATE = 20


@t.test
def drain_while_calling(ctx):
    uas = ctx.sipp('rehome_uas.xml', ip=h.CALLEE_IP, calls=CALLS,
                   duration=1000)
    node1, node2 = lib.cluster(ctx, uas.target)
    host2, _, port2 = node2.sip_addr.partition(':')
    uac = ctx.sipp('rehome_uac_drain.xml', ip=h.CALLER_IP,
                   remote=node1.sip_addr, calls=CALLS, rate=RATE,
                   duration=3000,
                   args=['-key', 'alt_host', host2, '-key', 'alt_port',
                         port2])
    uas.start()
    uac.start()
    time.sleep(2.5)     # calls come, ring, talk and end all the time now
    ringing = h.wait_until(lambda: node1.dialog_counts()['early'], 1)
    assert ringing, 'no call ringing when the drain starts'


    rc, out, err = lib.rehomectl(node1, 'drain', '--to', 'node2')
    assert rc == 0, 'rehomectl: %d\n%s%s' % (rc, out, err)
    assert ', 0 failed' in out, out
    moved = int(out.split(':')[1].split()[0])
    assert moved >= ringing, 'moved %d, %d were ringing' % (moved, ringing)
    assert lib.status(node1)['rehome']['draining'] is True

    caller, callee = uac.result(), uas.result(timeout=10)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()

    refused = caller.select('received', 'INVITE', 503)
    assert refused, 'no INVITE was refused with 503'
    assert all(m.header('Retry-After') for m in refused), refused[0].raw

    byes = caller.select('sent', 'BYE')
    assert len(byes) == CALLS, '%d BYEs' % len(byes)
    stray = [m.start_line for m in byes if node2.sip_addr not in
             m.start_line]
    assert not stray, 'BYEs not to node2: %s' % stray[:3]

    counts = node1.dialog_counts()
    assert counts['served'] == 0, counts
    for node in (node1, node2):
        assert h.wait_until(lambda: node.active_dialogs() == 0, 5), \
            node.dialog_counts()


t.main()
