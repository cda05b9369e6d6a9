"""test_proxy_reliable.py  2xx reliability and the SIP timers, with lost messages.

Raw UAs (rawua.py) that lose messages on purpose:
- the caller ignores the first copies of the 200 to its INVITE: the engine
  resends it at T1, 2*T1, ... T2 until the caller's ACK, which then
  reaches the callee exactly once; the callee's own copies of its 200 are
  not ACKed before that; a later copy gets the same ACK again, and a
  repeated ACK of the caller does not cross;
- the same for a re-INVITE from either side;
- over TCP the 200 is sent once, and the ACK still awaited and relayed;
- Timer C (ring_timeout): an INVITE answered only 180 is CANCELled toward
  the callee and answered 408, and the dialog is gone; an early dialog
  reaped by dialog_timeout ends the same way;
- a non-INVITE request repeated 20 s after its answer gets the same
  answer again from the engine, and does not reach the other side twice.
"""
import time

import harness as h
from harness.rawua import (SDP_CALLEE, SDP_CALLER, Call, TcpUa, Ua,
                           is_request, is_response, response, via_addr)

t = h.Test(__file__)

T1, T2 = 0.5, 4.0
SLACK = 0.3     # timer jitter on a loaded machine


def engine(ctx, callee, **extra):
    return ctx.rehomed(upstream='udp:%s' % callee.addr, extra=extra)


def intervals(msgs):
    return [round(b.time - a.time, 2) for a, b in zip(msgs, msgs[1:])]


def assert_backoff(msgs, what):
    """Copies at T1, 2*T1, ... T2 after the first."""
    want = [min(T1 * 2 ** i, T2) for i in range(len(msgs) - 1)]
    got = intervals(msgs)
    ok = all(abs(g - w) <= SLACK for g, w in zip(got, want))
    assert ok, '%s resent after %s s, expected %s' % (what, got, want)


def hang_up(call, rh):
    """The caller's BYE crosses, the callee answers: no dialog left."""
    bye = call.caller.request('BYE')
    call.caller.send(bye)
    got = call.callee_ua.expect(is_request('BYE'), 'BYE')
    call.callee_ua.send(response(got, 200, 'OK'), via_addr(got))
    call.caller_ua.expect(is_response(200, 'BYE'), '200 to the BYE')
    assert h.wait_until(lambda: rh.active_dialogs() == 0, 5), \
        'dialogs left: %s' % rh.dialog_counts()


@t.test
def ok_resent_until_ack(ctx):
    caller, callee = Ua(ctx, h.CALLER_IP), Ua(ctx, h.CALLEE_IP)
    rh = engine(ctx, callee)
    call = Call(caller, callee, rh.sip_addr)
    call.send_invite()
    inv = call.answer()

    # the callee repeats its 200 early: not ours to ACK yet
    time.sleep(0.25)
    callee.send(call.ok, via_addr(inv))
    time.sleep(0.5)
    callee.send(call.ok, via_addr(inv))

    # the caller loses the first five copies and ACKs the sixth
    copies = [caller.expect(is_response(200, cseq=1), '200 copy %d' % i,
                            T2 + 2) for i in range(6)]
    assert_backoff(copies, 'the 200 to the INVITE')
    assert len({m.raw for m in copies}) == 1, 'copies differ'
    call.learn(copies[0])
    ack_sent = call.ack()

    acks = callee.expect_all(is_request('ACK'), 'the ACK', 1.0)
    assert len(acks) == 1, '%d ACKs reached the callee' % len(acks)
    assert acks[0].time >= ack_sent, 'the callee was ACKed before the caller'
    assert acks[0].cseq == (inv.cseq[0], 'ACK'), acks[0].cseq
    assert acks[0].call_id == inv.call_id

    # acknowledged: no more copies
    late = caller.take_all(is_response(200), T2 + 0.5)
    assert not late, '200 resent after the ACK: %s' % intervals(late)

    # a repeated ACK of the caller stops at the engine
    call.ack()
    assert not callee.take_all(is_request('ACK'), 1.0), 'ACK crossed twice'

    # a copy of the callee's 200 means our ACK was lost: the same again
    callee.send(call.ok, via_addr(inv))
    again = callee.expect_all(is_request('ACK'), 'the ACK again', 1.0)
    assert len(again) == 1, '%d ACKs for a copy of the 200' % len(again)
    assert again[0].raw == acks[0].raw, 'not the same ACK'

    # a 200 naming the dialog by its did alone is no copy of it: nothing
    # is ACKed (one with another To tag is another branch's: ACK and BYE,
    # test_rehome_offer.py)
    assert inv.call_id.count('-') == 2, inv.call_id     # rh-<did>-<key>
    other = call.ok.replace(inv.call_id, inv.call_id.rsplit('-', 1)[0])
    assert other != call.ok
    callee.send(other, via_addr(inv))
    assert not callee.take_all(is_request('ACK'), 1.0), \
        'a 200 of another dialog was ACKed'

    hang_up(call, rh)


@t.test
def ok_over_tcp_awaits_ack(ctx):
    callee = Ua(ctx, h.CALLEE_IP)
    rh = engine(ctx, callee)
    caller = TcpUa(ctx, h.CALLER_IP, rh.sip_addr)
    call = Call(caller, callee, rh.sip_addr)
    call.send_invite()
    inv = call.answer()
    callee.send(call.ok, via_addr(inv))     # the callee's own copy
    call.ok_received()

    # over TCP the 200 is not resent, and nobody is ACKed meanwhile
    assert not caller.take_all(is_response(200), 2.5), '200 resent'
    assert not callee.take_all(is_request('ACK'), 0), 'ACKed for the caller'

    ack_sent = call.ack()
    acks = callee.expect_all(is_request('ACK'), 'the ACK', 1.0)
    assert len(acks) == 1, '%d ACKs reached the callee' % len(acks)
    assert acks[0].time >= ack_sent
    assert acks[0].cseq == (inv.cseq[0], 'ACK'), acks[0].cseq

    hang_up(call, rh)


def reinvite_lost_ack(ctx, from_caller):
    """A re-INVITE from one side; its sender loses the first two copies
    of the 200 the engine relays."""
    caller, callee = Ua(ctx, h.CALLER_IP), Ua(ctx, h.CALLEE_IP)
    rh = engine(ctx, callee)
    call = Call(caller, callee, rh.sip_addr)
    call.setup()

    leg = call.caller if from_caller else call.callee
    peer = callee if from_caller else caller
    leg.send(leg.request('INVITE', body=SDP_CALLER if from_caller
                         else SDP_CALLEE))
    reinv = peer.expect(lambda m: m.is_request and m.method == 'INVITE',
                        'the re-INVITE')
    ok = response(reinv, 200, 'OK', contact='sip:peer@%s' % peer.addr,
                  body=SDP_CALLEE if from_caller else SDP_CALLER)
    peer.send(ok, via_addr(reinv))
    time.sleep(0.25)
    peer.send(ok, via_addr(reinv))      # its own copy: not ACKed yet

    copies = [leg.ua.expect(is_response(200, cseq=leg.cseq),
                            '200 copy %d' % i, T2) for i in range(3)]
    assert_backoff(copies, 'the 200 to the re-INVITE')
    ack_sent = leg.send(leg.request('ACK', leg.cseq))

    acks = peer.expect_all(is_request('ACK'), 'the ACK', 1.0)
    assert len(acks) == 1, '%d ACKs crossed' % len(acks)
    assert acks[0].time >= ack_sent, 'ACKed before the sender did'
    assert acks[0].cseq == (reinv.cseq[0], 'ACK'), acks[0].cseq
    assert acks[0].call_id == reinv.call_id

    peer.send(ok, via_addr(reinv))
    again = peer.expect_all(is_request('ACK'), 'the ACK again', 1.0)
    assert [m.raw for m in again] == [acks[0].raw], \
        '%d ACKs for a copy of the 200' % len(again)
    assert not leg.ua.take_all(is_response(200), 1.0), '200 resent'

    hang_up(call, rh)


@t.test
def reinvite_from_callee_resent_until_ack(ctx):
    reinvite_lost_ack(ctx, from_caller=False)


@t.test
def reinvite_from_caller_resent_until_ack(ctx):
    reinvite_lost_ack(ctx, from_caller=True)


def ringing_ends(ctx, call, rh, start, after):
    """CANCEL to the callee `after` s (+1: the engine's timers tick every
    second) from `start`; the callee ends its INVITE; 408 to the caller,
    the 487 ACKed, no dialog left."""
    callee, caller = call.callee_ua, call.caller_ua
    cancel = callee.expect(is_request('CANCEL'), 'CANCEL', after + 3)
    waited = cancel.time - start
    assert after - SLACK <= waited <= after + 1 + SLACK, \
        'CANCEL after %.2f s' % waited
    callee.send(response(cancel, 200, 'OK'), via_addr(cancel))
    callee.send(response(call.invite_in, 487, 'Request Terminated',
                         call.callee.local.split(';tag=')[1]),
                via_addr(call.invite_in))
    callee.expect(is_request('ACK'), 'the ACK of the 487')

    final = caller.expect(lambda m: not m.is_request and m.status >= 200,
                          'a final answer', 2)
    assert final.status == 408, final.start_line
    call.ack_failure(final)

    status, data = rh.ctl.get('/v1/dialogs')
    assert status == 200 and data['count'] == 0, data
    assert rh.active_dialogs() == 0, rh.dialog_counts()


@t.test
def ring_timeout_cancels(ctx):
    caller, callee = Ua(ctx, h.CALLER_IP), Ua(ctx, h.CALLEE_IP)
    rh = engine(ctx, callee, ring_timeout=2)
    call = Call(caller, callee, rh.sip_addr)
    start = call.send_invite()
    call.answer(codes=(180,))
    caller.expect(is_response(180), '180')
    ringing_ends(ctx, call, rh, start, 2)
    assert rh.wait_log('unanswered for too long'), rh.log_tail()


@t.test
def early_dialog_timeout_cancels(ctx):
    caller, callee = Ua(ctx, h.CALLER_IP), Ua(ctx, h.CALLEE_IP)
    rh = engine(ctx, callee, dialog_timeout=2)
    call = Call(caller, callee, rh.sip_addr)
    call.send_invite()
    call.answer(codes=(180,))
    ringing = caller.expect(is_response(180), '180')
    assert rh.dialog_counts()['early'] == 1, rh.dialog_counts()
    ringing_ends(ctx, call, rh, ringing.time, 2)


@t.test
def non_invite_absorbed_for_32s(ctx):
    caller, callee = Ua(ctx, h.CALLER_IP), Ua(ctx, h.CALLEE_IP)
    rh = engine(ctx, callee)
    call = Call(caller, callee, rh.sip_addr)
    call.setup()

    info = call.caller.request('INFO')
    call.caller.send(info)
    got = callee.expect(is_request('INFO'), 'INFO')
    callee.send(response(got, 200, 'OK'), via_addr(got))
    first = caller.expect(is_response(200, 'INFO'), '200 to the INFO')

    # Timer J is 64*T1: a copy 20 s later is still the same transaction
    time.sleep(20)
    call.caller.send(info)
    again = caller.expect(is_response(200, 'INFO'), 'the 200 again', 2)
    assert again.raw == first.raw, 'another answer:\n%s' % again.raw
    assert not callee.take_all(is_request('INFO'), 1.0), \
        'the INFO crossed twice'

    hang_up(call, rh)


t.main()
