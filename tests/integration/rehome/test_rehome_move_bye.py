"""test_rehome_move_bye.py  The caller hangs up while a move is under way.

Node 1 hands its one call to node 2 (POST /v1/move); the endpoints never
answer node 2's re-INVITE (as sipp, which aborts a call on it), and the
caller sends BYE through node 1, the Contact it knows:
  pending   after the re-INVITE went out: node 1 forwards the BYE to node 2,
            which relays it; the move ends at once with the dialog "ended"
            (not after the re-INVITE's 32 s timeout);
  crossing  right after the move started, so that node 1 relays the BYE
            itself, and the callee answers it 0.5 s later, once node 2's
            copy replaced node 1's: node 1 tells node 2 ("bye" on the
            rehome channel), which ends the call too. Before,
            node 2 re-INVITEd both legs for 32 s each, holding one of the
            job's in-flight slots, and kept the dead call until
            dialog_timeout (the soak's moves that waited 50 s).
Either way the job ends within seconds of the BYE, the BYE gets its 200,
and no node keeps the dialog. (libre cannot stop an INVITE transaction
before a provisional response, RFC 3261 9.1: a re-INVITE already sent is
retransmitted until Timer B even though its call is over.)
"""
import time

import harness as h
from harness import nodes as lib
from harness.rawua import Call, Ua, is_request, is_response, response, \
    via_addr

t = h.Test(__file__)


def in_dialog_invite(m):
    return m.is_request and m.method == 'INVITE' and \
        ';tag=' in (m.header('To') or '')


def start_move(ctx):
    caller, callee = Ua(ctx, h.CALLER_IP), Ua(ctx, h.CALLEE_IP)
    node1, node2 = lib.cluster(ctx, 'udp:' + callee.addr)
    call = Call(caller, callee, node1.sip_addr)
    call.setup()
    lib.wait_confirmed(node1, 1)
    assert h.wait_until(lambda: lib.replicas(node2) == 1, 5), \
        node2.dialog_counts()
    status, job = node1.ctl.post('/v1/move', {'tag': 'service',
                                              'to': 'node2', 'count': 1})
    assert status == 202, (status, job)
    return node1, node2, call, job


def hang_up(call, wait=0.0):
    """The caller's BYE; the callee answers it (and nothing else), after
    `wait` s."""
    call.caller.send(call.caller.request('BYE'))
    bye = call.callee_ua.expect(is_request('BYE'), 'BYE')
    time.sleep(wait)
    call.callee_ua.send(response(bye, 200, 'OK'), via_addr(bye))
    call.caller_ua.expect(is_response(200, 'BYE'), '200 to the BYE')
    return time.monotonic()


def check_ended(node1, node2, job, bye_at):
    job = lib.wait_job(node1, job, timeout=10)
    took = time.monotonic() - bye_at
    assert (job['moved'], job['failed'], job['ended']) == (0, 0, 1), job
    assert took < h.slow(5), 'the move ended %.1f s after the BYE: %s' % (
        took, job)
    for node in (node1, node2):
        assert h.wait_until(lambda: node.dialog_counts()['total'] == 0,
                            5), (node.name, node.dialog_counts())


@t.test
def pending(ctx):
    node1, node2, call, job = start_move(ctx)
    reinv = None
    deadline = time.monotonic() + h.slow(5)
    while reinv is None and time.monotonic() < deadline:
        for ua in (call.caller_ua, call.callee_ua):
            got = ua.take_all(in_dialog_invite, 0.1)
            if got:
                reinv = got[0]
                break
    assert reinv is not None, 'no re-INVITE from node 2'
    assert node2.sip_addr in reinv.header('Contact'), reinv.raw
    check_ended(node1, node2, job, hang_up(call))


@t.test
def crossing(ctx):
    node1, node2, call, job = start_move(ctx)
    check_ended(node1, node2, job, hang_up(call, 0.5))


t.main()
