"""test_media_anchor.py  Calls anchored in rtpengine (SPEC "Media").

A real rtpengine (userspace) whose SDPs point at 127.0.0.30, rehomed with
a `media_relay` line, and two raw-socket endpoints with real media
sockets:
- anchored_call: the callee's INVITE and the caller's 200 carry the
  relay's address, never the other endpoint's; RTP sent to what each side
  was given arrives at the other end, both ways; the dialog names its
  relay (replicated state, GET /v1/dialogs); a re-INVITE from the callee
  goes through the relay too (both legs keep pointing at it, and media
  still flows); the BYE deletes the call from rtpengine.
- opted_out: a policy returning media=false: SDPs cross untouched, and
  rtpengine never hears of the call.
- relay_down: with rtpengine stopped (SIGSTOP), /v1/media/relays shows it
  down within its ping interval, and a new INVITE is answered 503 with
  Retry-After instead of being relayed without media.
- relay_silent_mid_call: rtpengine stops answering during a call: an
  endpoint's re-INVITE gets 503 (its media stays as it was), the call stays
  up, and the BYE still ends it.
"""
import signal

import harness as h
from harness import rtpengine
from harness.rtpengine import RtpPeer, media_flows, sdp_media
from harness.ua import call, hang_up

t = h.Test(__file__)

RELAY_IP = '127.0.0.30'


def engine(ctx, rtp, callee, **kw):
    """rehomed anchoring in rtp, whose upstream is the callee; returned
    once the relay answered its first ping (it is down until then)."""
    rh = ctx.rehomed(upstream='udp:%s:%d' % (callee.ip, callee.peer.port),
                     extra=['media_relay %s' % rtp.ng], **kw)
    assert h.wait_until(lambda: relay_state(rh) == 'up', 3), 'relay down'
    return rh


def last_sdp(ua, pred):
    msgs = [m for m in ua.received if pred(m) and m.body]
    assert msgs, '%s got no SDP' % ua.name
    return msgs[-1].body


def only_dialog(rh):
    status, data = rh.ctl.get('/v1/dialogs')
    assert status == 200 and data['count'] == 1, data
    return data['dialogs'][0]


def relay_state(rh):
    return list(rtpengine.relays(rh).values())[0]['state']


@t.test
def anchored_call(ctx):
    rtp = rtpengine.start(ctx)
    caller, callee = rtpengine.endpoints(ctx)
    rh = engine(ctx, rtp, callee)

    call(rh.sip_addr, caller, callee)
    to_callee = last_sdp(callee, lambda m: m.method == 'INVITE')
    to_caller = last_sdp(caller, lambda m: m.status == 200)
    for who, sdp in (('callee', to_callee), ('caller', to_caller)):
        ip, port = sdp_media(sdp)
        assert ip == RELAY_IP, '%s was given %s, not the relay:\n%s' % (
            who, ip, sdp)
        assert rtp.port_min <= port <= rtp.port_max, port
        for leak in (h.CALLER_IP, h.CALLEE_IP):
            assert leak not in sdp, '%s sees %s:\n%s' % (who, leak, sdp)
    media_flows(caller, callee, to_caller, to_callee)

    dlg = only_dialog(rh)
    assert dlg['media_relay'] == rtp.ng, dlg
    call_id = 'rh-' + dlg['did']
    assert rtp.knows(call_id), 'rtpengine does not know %s' % call_id

    # the callee re-INVITEs with a new media port: through the relay too
    callee.rtp.close()
    callee.rtp = RtpPeer(h.CALLEE_IP)
    callee.sdp = callee.rtp.sdp('bob')
    reinv = callee.request('INVITE', body=callee.sdp)
    callee.send(reinv)
    got = caller.wait(lambda m: m.is_request and m.method == 'INVITE')
    assert got, 'the re-INVITE did not reach the caller'
    ok = callee.final(reinv)
    assert ok and ok.status == 200, 'callee re-INVITE: %s' % (
        ok and ok.status)
    callee.send(callee.request('ACK'))
    assert caller.wait(lambda m: m.is_request and m.method == 'ACK'), \
        'no ACK relayed'
    new_to_caller = got.body
    assert sdp_media(new_to_caller)[0] == RELAY_IP, new_to_caller
    assert sdp_media(ok.body)[0] == RELAY_IP, ok.body
    media_flows(caller, callee, new_to_caller, ok.body)

    hang_up(caller, callee)
    assert h.wait_until(lambda: not rtp.knows(call_id), 3), \
        'rtpengine still has %s after the BYE' % call_id


@t.test
def opted_out(ctx):
    rtp = rtpengine.start(ctx)
    policy = ctx.path('nomedia.lua')
    with open(policy, 'w') as f:
        f.write('return {\n  on_initial_invite = function(req)\n'
                '    return {media = false}\n  end,\n}\n')
    caller, callee = rtpengine.endpoints(ctx)
    rh = engine(ctx, rtp, callee, policy=policy)

    call(rh.sip_addr, caller, callee)
    to_callee = last_sdp(callee, lambda m: m.method == 'INVITE')
    assert sdp_media(to_callee) == (caller.rtp.ip, caller.rtp.port), \
        to_callee
    dlg = only_dialog(rh)
    assert dlg.get('media_relay') is None, dlg
    assert not rtp.knows('rh-' + dlg['did'])
    hang_up(caller, callee)


@t.test
def relay_down(ctx):
    rtp = rtpengine.start(ctx)
    caller, callee = rtpengine.endpoints(ctx)
    rh = engine(ctx, rtp, callee)
    rtp.popen.send_signal(signal.SIGSTOP)
    try:
        assert h.wait_until(lambda: relay_state(rh) == 'down', 5), \
            'relay still %s' % relay_state(rh)
        caller.call_id = 'down@%s' % caller.ip
        caller.local, caller.remote = '<sip:alice@x>', '<sip:bob@x>'
        inv = caller.request('INVITE', 'sip:bob@%s' % rh.sip_addr,
                             body=caller.sdp)
        caller.send(inv, rh.sip_addr)
        final = caller.final(inv)
        assert final and final.status == 503, final and final.status
        assert final.header('Retry-After'), final.raw
        assert not callee.requests_received(0.3), 'INVITE relayed'
    finally:
        rtp.popen.send_signal(signal.SIGCONT)


@t.test
def relay_silent_mid_call(ctx):
    rtp = rtpengine.start(ctx)
    caller, callee = rtpengine.endpoints(ctx)
    rh = engine(ctx, rtp, callee)
    call(rh.sip_addr, caller, callee)

    rtp.popen.send_signal(signal.SIGSTOP)
    try:
        reinv = caller.request('INVITE', body=caller.sdp)
        caller.send(reinv)
        final = caller.final(reinv, timeout=5)
        assert final and final.status == 503, final and final.status
        caller.send(caller.request('ACK'))
        assert not [m for m in callee.requests_received(0.3)
                    if m.method == 'INVITE'], 're-INVITE relayed'
        assert rh.active_dialogs() == 1, 'the call did not stay up'
    finally:
        rtp.popen.send_signal(signal.SIGCONT)
    hang_up(caller, callee)
    assert rh.wait_log(r'SDP not taken by media relay'), 'no log line'


t.main()
