"""test_rehome_ack.py  A re-home while the caller's ACK is lost.

Node 1 relays the callee's 200 to the caller, whose ACK never arrives.
A 200 whose ACK is overdue (no ACK after T1, when node 1 resends it) is
part of the replicated dialog, so when node 1 dies and node 2 takes the
calls over, node 2 resends that 200 itself; the
caller's ACK of a copy reaches the callee once, with the CSeq of the
callee's INVITE, and no other ACK of it before. The re-home's own
re-INVITE to the caller loses its first ACK as well: the caller's copy of
its 200 gets the same ACK again from node 2.
"""
import harness as h
from harness import nodes as lib
from harness.rawua import (SDP_CALLEE, SDP_CALLER, Call, Ua, is_request,
                           is_response,
                           response, uri_of, via_addr)

t = h.Test(__file__)


def version(node):
    status, data = node.ctl.get('/v1/dialogs')
    assert status == 200 and data['count'] == 1, data
    return data['dialogs'][0]['version']


def in_dialog_invite(m):
    return m.is_request and m.method == 'INVITE' and \
        ';tag=' in (m.header('To') or '')


@t.test
def rehome_with_lost_ack(ctx):
    caller, callee = Ua(ctx, h.CALLER_IP), Ua(ctx, h.CALLEE_IP)
    node1, node2 = lib.cluster(ctx, 'udp:' + callee.addr)
    call = Call(caller, callee, node1.sip_addr)
    call.send_invite()
    inv = call.answer()

    # the caller gets the 200 from node 1, but its ACK is lost; node 1
    # resends the 200 and replicates it
    call.learn(call.caller_ua.expect(is_response(200, cseq=1), '200'))
    caller.expect(is_response(200, cseq=1), 'a copy of the 200 from node 1')
    lib.wait_confirmed(node1, 1)
    assert h.wait_until(lambda: lib.replicas(node2) == 1 and
                        version(node2) == version(node1), 5), \
        (node2.dialog_counts(), version(node1))

    lib.kill(ctx, node1)
    assert h.wait_until(lambda: lib.node_state(node2, 'node1') == 'down',
                        5), lib.status(node2)
    status, job = node2.ctl.post('/v1/rehome', {'tag': 'service'})
    assert status == 202, (status, job)

    # node 2 re-INVITEs the caller; the caller loses node 2's first ACK
    reinv = caller.expect(in_dialog_invite, 'the re-INVITE from node 2')
    assert node2.sip_addr in uri_of(reinv.header('Contact')), reinv.raw
    ok = response(reinv, 200, 'OK', contact='sip:alice@%s' % caller.addr,
                  body=SDP_CALLER)
    caller.send(ok, via_addr(reinv))
    ack1 = caller.expect(lambda m: is_request('ACK')(m) and
                         m.cseq[0] == reinv.cseq[0], 'ACK of the re-INVITE')
    caller.send(ok, via_addr(reinv))
    ack2 = caller.expect(lambda m: is_request('ACK')(m) and
                         m.cseq[0] == reinv.cseq[0], 'the ACK again')
    assert ack2.raw == ack1.raw, 'another ACK:\n%s' % ack2.raw
    call.caller.target = uri_of(reinv.header('Contact'))

    # then the callee
    reinv_b = callee.expect(in_dialog_invite, 'the re-INVITE of the callee')
    callee.send(response(reinv_b, 200, 'OK', body=SDP_CALLEE),
                via_addr(reinv_b))
    acks = callee.expect_all(is_request('ACK'), 'ACK of its re-INVITE', 1.0)
    assert [m.cseq[0] for m in acks] == [reinv_b.cseq[0]], \
        'the callee got ACKs %s' % [m.cseq for m in acks]
    job = lib.wait_job(node2, job)
    assert (job['total'], job['moved'], job['failed']) == (1, 1, 0), job

    # node 2 resends the caller the 200 node 1 sent it; its ACK crosses
    copy = caller.expect(is_response(200, cseq=1), 'a copy of the 200', 5)
    ack_sent = call.ack(1)
    acks = callee.expect_all(is_request('ACK'), 'the caller\'s ACK', 1.5)
    assert [m.cseq[0] for m in acks] == [inv.cseq[0]], \
        'the callee got ACKs %s for its 200 (CSeq %d)' % (
            [m.cseq for m in acks], inv.cseq[0])
    assert acks[0].time >= ack_sent
    assert copy.header('To') == call.caller.remote

    # the call goes on through node 2 and ends
    bye = call.caller.request('BYE')
    call.caller.send(bye)
    got = callee.expect(is_request('BYE'), 'BYE')
    callee.send(response(got, 200, 'OK'), via_addr(got))
    caller.expect(is_response(200, 'BYE'), '200 to the BYE')
    assert h.wait_until(lambda: node2.active_dialogs() == 0, 5), \
        node2.dialog_counts()


t.main()
