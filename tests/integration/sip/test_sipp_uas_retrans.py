"""test_sipp_uas_retrans.py  The callee scenarios survive a late INVITE
retransmission.

Under load the engine may read the callee's 100 Trying after its Timer A
fired, and send the initial INVITE again after the callee's 200. sipp
then takes it for a new request, which aborted the call at the ACK: the
call was gone from sipp, and a re-home's re-INVITE to it went unanswered
until the caller hung up (the "move stalls ~7 s" seen in the rehome
tests). A raw UA plays the engine toward uas.xml and rehome_uas.xml:
INVITE, 200, the INVITE again, ACK; then a re-INVITE and a BYE must be
answered and sipp must end the call cleanly.
"""
import time

import harness as h
from harness.rawua import Leg, Ua, is_response

t = h.Test(__file__)

SDP = ('v=0\r\no=alice 1 1 IN IP4 127.0.0.99\r\ns=-\r\n'
       'c=IN IP4 127.0.0.99\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n')


def late_retransmission(ctx, scenario):
    uas = ctx.sipp(scenario, ip=h.CALLEE_IP, calls=1).start()
    ua = Ua(ctx, h.CALLER_IP)
    leg = Leg(ua, 'retrans-%s@test' % scenario,
              '<sip:alice@example.com>;tag=a1', '<sip:bob@example.com>',
              'sip:bob@%s' % uas.target.split(':', 1)[1], 1)
    invite = leg.request('INVITE', cseq=1, body=SDP)
    leg.send(invite)
    ok = ua.expect(is_response(200, 'INVITE', 1), '200 to the INVITE')
    leg.remote = ok.header('To')
    leg.send(invite)                    # the same INVITE, late
    time.sleep(0.2)                     # the ACK follows, as in the logs
    leg.send(leg.request('ACK', cseq=1))
    time.sleep(0.2)
    leg.send(leg.request('INVITE', cseq=2, body=SDP))
    ua.expect(is_response(200, 'INVITE', 2), '200 to the re-INVITE')
    leg.send(leg.request('ACK', cseq=2))
    leg.send(leg.request('BYE', cseq=3))
    ua.expect(is_response(200, 'BYE', 3), '200 to the BYE')
    res = uas.result(timeout=10)
    assert res.ok, res.why()


@t.test
def uas_late_invite_retransmission(ctx):
    late_retransmission(ctx, 'uas.xml')


@t.test
def rehome_uas_late_invite_retransmission(ctx):
    late_retransmission(ctx, 'rehome_uas.xml')


t.main()
