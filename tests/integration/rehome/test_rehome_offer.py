"""test_rehome_offer.py  Offer/answer across a re-home, with raw UAs.

  answer_passed_on      challenge: the callee answers the caller's SDP
                        with a new port but the same o= version (as
                        endpoints with a fixed o= line do): the caller
                        gets that answer in one more re-INVITE, with an
                        o= version above the one it had, and an SDP the
                        callee relays later keeps above it too;
  single_leg_passes_on  mode caller: the caller answers with a new port;
                        the callee is re-INVITEd with it, and as its
                        answer is what the caller has, nothing follows;
  update_needs_allow    mode update: the caller's Allow lists UPDATE and
                        gets an UPDATE, the callee's does not and gets a
                        re-INVITE;
  no_491_while_handing  while node 1 hands a call to node 2, which has
                        not sent anything yet, the callee's re-INVITE is
                        relayed, not refused with 491;
  prack_renumbered      after a re-home the engine's CSeqs toward the
                        callee are ahead of the caller's: the RAck of the
                        caller's PRACK names the re-INVITE by the number
                        the callee gave it;
  session_timer_kept    the caller asked for a session timer and the
                        callee's 200 made the caller the refresher: the
                        engine's re-INVITEs carry the same interval, the
                        caller still refreshing (RFC 4028);
  offset_replicated     the o= offset of answer_passed_on travels with
                        the dialog: after node 1 dies and node 2 takes
                        the call, the callee's next SDP still reaches the
                        caller above what it saw;
  forked_2xx_ended      a second branch of the forked INVITE answers
                        200 too: the engine ACKs it and sends it a BYE,
                        once (a copy of that 200 gets the ACK again),
                        and the caller sees one 200 only.
"""
import os
import signal

import harness as h
from harness import nodes as lib
from harness.rawua import (SDP_CALLEE, SDP_CALLER, Call, Ua, is_request,
                           is_response, response, uri_of, via_addr)

t = h.Test(__file__)

NEW_CALLEE = SDP_CALLEE.replace('7000', '7002')            # o= unchanged
NEW_CALLER = SDP_CALLER.replace('6000', '6002').replace(
    'alice 1000 1000', 'alice 1000 1001')
ALLOW = 'Allow: INVITE, ACK, CANCEL, BYE, UPDATE'
ALLOW_NO_UPDATE = 'Allow: INVITE, ACK, CANCEL, BYE'


def o_version(body):
    return int(lib.o_line(body).split()[2])


def refresh(method):
    return lambda m: m.is_request and m.method == method and \
        ';tag=' in (m.header('To') or '')


def answer_refresh(ua, method, sdp):
    """Take the next in-dialog `method`, answer it 200 with sdp (and
    take its ACK); returns the request."""
    req = ua.expect(refresh(method), 'a re-%s' % method)
    ua.send(response(req, 200, 'OK', contact=ua.contact('ua'), body=sdp),
            via_addr(req))
    if method == 'INVITE':
        ua.expect(lambda m: is_request('ACK')(m) and
                  m.cseq[0] == req.cseq[0], 'the ACK of %s' % method)
    return req


def one_call(ctx, caller_hdrs=(), callee_hdrs=()):
    caller, callee = Ua(ctx, h.CALLER_IP), Ua(ctx, h.CALLEE_IP)
    rh = ctx.rehomed(upstream='udp:%s' % callee.addr)
    call = Call(caller, callee, rh.sip_addr)
    call.setup(caller_hdrs, callee_hdrs)
    lib.wait_confirmed(rh, 1)
    return rh, call


def rehome(rh, mode):
    status, job = rh.ctl.post('/v1/rehome', {'tag': 'service', 'all': True,
                                             'mode': mode})
    assert status == 202, (status, job)
    return job


def moved(rh, job):
    job = lib.wait_job(rh, job)
    assert (job['total'], job['moved'], job['failed']) == (1, 1, 0), job


@t.test
def answer_passed_on(ctx):
    rh, call = one_call(ctx)
    caller, callee = call.caller_ua, call.callee_ua
    job = rehome(rh, 'challenge')

    inv_a = answer_refresh(caller, 'INVITE', SDP_CALLER)
    assert inv_a.body == SDP_CALLEE, inv_a.body
    inv_b = answer_refresh(callee, 'INVITE', NEW_CALLEE)
    assert inv_b.body == SDP_CALLER, inv_b.body

    # the caller had the callee's old SDP: it gets the new one
    again = answer_refresh(caller, 'INVITE', SDP_CALLER)
    assert again.cseq[0] > inv_a.cseq[0]
    assert 'm=audio 7002 ' in again.body, again.body
    old = o_version(SDP_CALLEE)
    assert o_version(again.body) == old + 1, lib.o_line(again.body)
    moved(rh, job)
    assert not callee.take_all(refresh('INVITE'), 0.5), \
        'the callee has the caller\'s answer already'

    # the callee's next change (its next version) reaches the caller
    # above what the caller has now
    call.callee.target = uri_of(inv_b.header('Contact'))
    call.callee.send(call.callee.request(
        'INVITE', body=SDP_CALLEE.replace(' %d IN' % old, ' %d IN' % (old + 1))
        .replace('7000', '7004')))
    got = caller.expect(refresh('INVITE'), 'the callee\'s re-INVITE')
    assert 'm=audio 7004 ' in got.body, got.body
    assert o_version(got.body) == old + 2, lib.o_line(got.body)


@t.test
def single_leg_passes_on(ctx):
    rh, call = one_call(ctx)
    caller, callee = call.caller_ua, call.callee_ua
    job = rehome(rh, 'caller')

    inv_a = answer_refresh(caller, 'INVITE', NEW_CALLER)
    assert inv_a.body == SDP_CALLEE, inv_a.body
    inv_b = answer_refresh(callee, 'INVITE', SDP_CALLEE)
    assert inv_b.body == NEW_CALLER, inv_b.body
    moved(rh, job)
    assert not caller.take_all(refresh('INVITE'), 0.5), \
        'the caller has the callee\'s answer already'


@t.test
def update_needs_allow(ctx):
    rh, call = one_call(ctx, [ALLOW], [ALLOW_NO_UPDATE])
    job = rehome(rh, 'update')

    upd = answer_refresh(call.caller_ua, 'UPDATE', SDP_CALLER)
    assert upd.body == SDP_CALLEE, upd.body
    inv = answer_refresh(call.callee_ua, 'INVITE', SDP_CALLEE)
    assert inv.body == SDP_CALLER, inv.body
    moved(rh, job)


@t.test
def no_491_while_handing(ctx):
    caller, callee = Ua(ctx, h.CALLER_IP), Ua(ctx, h.CALLEE_IP)
    # the steps below fit in node_timeout, which a slow build needs longer
    node1, node2 = lib.cluster(ctx, 'udp:' + callee.addr,
                               node_timeout=int(h.slow(1000)))
    call = Call(caller, callee, node1.sip_addr)
    call.setup()
    lib.wait_confirmed(node1, 1)
    assert h.wait_until(lambda: lib.replicas(node2) == 1, 5)

    # node 2 will not act: the hand-off waits (until node 2 is down)
    os.kill(node2.pid, signal.SIGSTOP)
    try:
        status, job = node1.ctl.post('/v1/move', {'tag': 'service',
                                                  'to': 'node2',
                                                  'count': 1})
        assert status == 202, (status, job)
        assert h.wait_until(lambda: lib.status(node1)['rehome']
                            ['jobs_running'] == 1, 1), lib.status(node1)

        call.callee.send(call.callee.request('INVITE', body=NEW_CALLEE))
        got = caller.take(refresh('INVITE'), h.slow(0.5))
        refused = callee.take_all(is_response(491), 0.1)
        assert got is not None and not refused, \
            'callee\'s re-INVITE refused: %s' % refused
        assert 'm=audio 7002 ' in got.body, got.body
    finally:
        lib.kill(ctx, node2)

    caller.send(response(got, 200, 'OK', contact=caller.contact('ua'),
                         body=SDP_CALLER), via_addr(got))
    callee.expect(is_response(200), 'the caller\'s 200')
    job = lib.wait_job(node1, job, 10)
    assert job['failed'] == 1 and job['moved'] == 0, job


@t.test
def prack_renumbered(ctx):
    rh, call = one_call(ctx)
    caller, callee = call.caller_ua, call.callee_ua
    job = rehome(rh, 'callee')
    inv_b = answer_refresh(callee, 'INVITE', SDP_CALLEE)
    moved(rh, job)

    # the caller's re-INVITE 2 reaches the callee as 3; its 183 is
    # reliable (RSeq 1) and the caller PRACKs it: RAck 1 2 INVITE
    call.caller.send(call.caller.request('INVITE', body=SDP_CALLER))
    inv = callee.expect(refresh('INVITE'), 'the caller\'s re-INVITE')
    assert inv.cseq[0] == inv_b.cseq[0] + 1, (inv.cseq, inv_b.cseq)
    callee.send(response(inv, 183, 'Session Progress',
                         contact=callee.contact('ua'), body=SDP_CALLEE,
                         headers=['Require: 100rel', 'RSeq: 1']),
                via_addr(inv))
    prov = caller.expect(is_response(183), 'the 183')
    assert prov.header('RSeq') == '1' and prov.cseq[0] == 2, prov.raw
    call.caller.send(call.caller.request('PRACK',
                                         headers=['RAck: 1 2 INVITE']))
    prack = callee.expect(is_request('PRACK'), 'the PRACK')
    assert prack.header('RAck') == '1 %d INVITE' % inv.cseq[0], prack.raw
    assert prack.cseq[0] > inv.cseq[0], prack.cseq


@t.test
def session_timer_kept(ctx):
    rh, call = one_call(ctx, ['Supported: timer', 'Session-Expires: 1800'],
                        ['Require: timer',
                         'Session-Expires: 1800;refresher=uac'])
    job = rehome(rh, 'challenge')

    inv_a = answer_refresh(call.caller_ua, 'INVITE', SDP_CALLER)
    inv_b = answer_refresh(call.callee_ua, 'INVITE', SDP_CALLEE)
    moved(rh, job)
    for inv, refresher in ((inv_a, 'uas'), (inv_b, 'uac')):
        assert inv.header('Session-Expires') == \
            '1800;refresher=%s' % refresher, inv.raw
        assert 'timer' in (inv.header('Supported') or ''), inv.raw
        assert int(inv.header('Min-SE')) <= 1800, inv.raw


@t.test
def offset_replicated(ctx):
    caller, callee = Ua(ctx, h.CALLER_IP), Ua(ctx, h.CALLEE_IP)
    node1, node2 = lib.cluster(ctx, 'udp:' + callee.addr)
    call = Call(caller, callee, node1.sip_addr)
    call.setup()
    lib.wait_confirmed(node1, 1)

    job = rehome(node1, 'challenge')
    answer_refresh(caller, 'INVITE', SDP_CALLER)
    answer_refresh(callee, 'INVITE', NEW_CALLEE)
    again = answer_refresh(caller, 'INVITE', SDP_CALLER)
    moved(node1, job)
    old = o_version(SDP_CALLEE)
    assert o_version(again.body) == old + 1, lib.o_line(again.body)
    assert h.wait_until(lambda: dialog_of(node2).get('version') ==
                        dialog_of(node1)['version'], 5), dialog_of(node2)

    lib.kill(ctx, node1)
    assert h.wait_until(lambda: lib.node_state(node2, 'node1') == 'down', 5)
    status, job = node2.ctl.post('/v1/rehome', {'tag': 'service'})
    assert status == 202, (status, job)

    # node 2 re-INVITEs both legs with what each had (unchanged)
    inv_a = answer_refresh(caller, 'INVITE', SDP_CALLER)
    assert inv_a.body == again.body, inv_a.body
    inv_b = answer_refresh(callee, 'INVITE', NEW_CALLEE)
    assert node2.sip_addr in uri_of(inv_b.header('Contact'))
    moved(node2, job)

    # the callee's next version reaches the caller above old + 1
    call.callee.target = uri_of(inv_b.header('Contact'))
    call.callee.send(call.callee.request(
        'INVITE', body=NEW_CALLEE.replace(' %d IN' % old,
                                          ' %d IN' % (old + 1))))
    got = caller.expect(refresh('INVITE'), 'the callee\'s re-INVITE')
    assert o_version(got.body) == old + 2, lib.o_line(got.body)


def dialog_of(node):
    status, data = node.ctl.get('/v1/dialogs')
    assert status == 200, data
    return data['dialogs'][0] if data['count'] else {}


def to_tag(tag):
    return lambda m: m.is_request and \
        (m.header('To') or '').endswith(';tag=' + tag)


@t.test
def forked_2xx_ended(ctx):
    caller, callee = Ua(ctx, h.CALLER_IP), Ua(ctx, h.CALLEE_IP)
    rh = ctx.rehomed(upstream='udp:%s' % callee.addr)
    call = Call(caller, callee, rh.sip_addr)
    call.send_invite()
    inv = call.answer()
    other = response(inv, 200, 'OK', 'branch2', callee.contact('bob2'),
                     SDP_CALLEE)
    callee.send(other, via_addr(inv))
    call.ok_received()
    call.ack()

    ack2 = callee.expect(lambda m: to_tag('branch2')(m) and
                         m.method == 'ACK', 'the ACK of the other 200')
    bye2 = callee.expect(lambda m: to_tag('branch2')(m) and
                         m.method == 'BYE', 'the BYE of the other branch')
    assert ack2.cseq[0] == inv.cseq[0] and bye2.cseq[0] > inv.cseq[0]
    assert 'bob2@' in ack2.raw.split()[1] and 'bob2@' in bye2.raw.split()[1]
    callee.send(response(bye2, 200, 'OK'), via_addr(bye2))

    # the caller's ACK reaches the branch that won
    tag1 = call.callee.local.rpartition(';tag=')[2]
    callee.expect(lambda m: to_tag(tag1)(m) and m.method == 'ACK',
                  'the caller\'s ACK')

    # a copy of the other 200: the ACK again, no second BYE
    callee.send(other, via_addr(inv))
    again = callee.expect_all(to_tag('branch2'), 'the ACK again', 1.0)
    assert [m.method for m in again] == ['ACK'], again
    assert not caller.take_all(is_response(200), 0.2), 'a second 200'
    assert rh.active_dialogs() == 1, rh.dialog_counts()


t.main()
