"""test_cluster_early.py  A call ringing when its node dies is ended
cleanly by the node that takes its tag (issue 11, item 8).

Two nodes and a Redis; a raw-socket caller calls a raw-socket callee
through node 1; the callee rings (180 with its tag) and never answers.
Node 1 is killed (SIGKILL); node 2 sees it down and takes the tag
(`rehome service`). Node 2 then, from the replicated early dialog:
- answers the caller's INVITE 480: its Vias, its branch, its CSeq, so the
  caller's INVITE transaction ends;
- CANCELs the callee's INVITE: the same Via (branch) and CSeq number as
  the INVITE the callee got from node 1, so the callee's transaction
  matches it; and sends the callee a BYE in its early dialog;
- keeps nothing: no dialog and no replica is left on node 2.
A call nobody rings on stays untouched on a live node: the same call
through a live node 1 is not ended by `rehome service --force` taking
the tag on node 2 (only a dead node's ringing calls are ended).
"""
import re

import harness as h
from harness import nodes as lib
from harness.ua import Ua, tag_of

t = h.Test(__file__)


def branch(via):
    return re.search(r';branch=([^;\s]+)', via).group(1)


def ring(ctx, node1):
    caller, callee = Ua(ctx, h.CALLER_IP, 'alice'), Ua(ctx, h.CALLEE_IP, 'bob')
    caller.call_id = 'early@%s' % caller.ip
    caller.local, caller.remote = '<sip:alice@x>', '<sip:bob@x>'
    inv = caller.request('INVITE', 'sip:bob@%s:%d' % (callee.ip,
                                                     callee.peer.port),
                         body=caller.sdp)
    caller.send(inv, node1.sip_addr)
    got = callee.wait(lambda m: m.is_request and m.method == 'INVITE')
    assert got, 'the INVITE did not reach the callee'
    callee.learn_invite(got)
    callee.answer(got, 180, 'Ringing')
    assert caller.wait(lambda m: m.status == 180), 'no 180 at the caller'
    return caller, callee, inv, got


@t.test
def dead_node_ringing_call_ended(ctx):
    node1, node2 = lib.cluster(ctx, None)
    caller, callee, inv, got = ring(ctx, node1)
    # the 180's update (the callee's tag) replicated: the same dialog
    assert h.wait_until(lambda: lib.replicas(node2) == 1 and not
                        lib.replica_diffs(lib.dialogs(node1),
                                          lib.dialogs(node2)), 5), \
        lib.replica_diffs(lib.dialogs(node1), lib.dialogs(node2))

    lib.kill(ctx, node1)
    assert h.wait_until(lambda: lib.node_state(node2, 'node1') == 'down',
                        5)
    status, job = node2.ctl.post('/v1/rehome', {'tag': 'service'})
    assert status == 202, (status, job)

    final = caller.wait(lambda m: not m.is_request and m.status >= 300, 5)
    assert final and final.status == 480, final and final.raw
    assert branch(final.header('Via')) == \
        branch(re.search(r'Via: ([^\r]+)', inv).group(1)), final.raw
    assert final.header('CSeq') == '1 INVITE', final.raw
    assert final.call_id == caller.call_id

    cancel = callee.wait(lambda m: m.is_request and m.method == 'CANCEL', 5)
    assert cancel, 'no CANCEL at the callee'
    assert branch(cancel.header('Via')) == branch(got.header('Via')), \
        (cancel.header('Via'), got.header('Via'))
    assert cancel.header('CSeq').split()[0] == \
        got.header('CSeq').split()[0], cancel.raw
    assert cancel.call_id == got.call_id
    bye = callee.wait(lambda m: m.is_request and m.method == 'BYE', 5)
    assert bye and tag_of(bye.header('From')) == callee.remote_tag and \
        tag_of(bye.header('To')) == callee.tag, bye and bye.raw

    assert h.wait_until(lambda: node2.dialog_counts()['total'] == 0, 5), \
        node2.dialog_counts()
    assert node2.wait_log(r'ringing when its node died: 480 to the '
                          r'caller, CANCEL to the callee')


@t.test
def live_node_ringing_call_kept(ctx):
    node1, node2 = lib.cluster(ctx, None)
    caller, callee, inv, got = ring(ctx, node1)
    assert h.wait_until(lambda: lib.replicas(node2) == 1, 5)
    status, job = node2.ctl.post('/v1/rehome', {'tag': 'service',
                                                'force': True})
    assert status == 202, (status, job)
    lib.wait_job(node2, job)
    assert not callee.wait(lambda m: m.is_request and
                           m.method in ('CANCEL', 'BYE'), 1), \
        'a live node\'s ringing call was ended'
    assert not caller.wait(lambda m: not m.is_request and m.status >= 300,
                           0.2)
    assert node2.dialog_counts()['early'] == 1, node2.dialog_counts()


t.main()
