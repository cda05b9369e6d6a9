"""test_media_move.py  Moving calls' media between two rtpengines.

Two real rtpengines, A (SDPs at 127.0.0.30) and B (127.0.0.31), one
rehomed anchoring in both (new calls share them by weight), raw-socket
endpoints with real media sockets, each call to its own callee:
- move_api: POST /v1/media/move from the relay with the most calls to the
  other: the job moves each of its calls (and no other), both legs get a
  re-INVITE whose SDP points at the new relay, RTP flows through it both
  ways, the old relay no longer knows the calls (deleted once both legs
  took the new SDP), every dialog names the
  new relay; `rehomectl media relays` lists both relays; bad requests get
  clear errors (400/404);
- relay_killed: media_failover.lua loaded, the relay carrying most calls
  is killed (SIGKILL): the node sees it down and moves its calls to the
  other relay on its own; RTP flows again and every call still hangs up;
- garbled_relay: a fake relay that answers ping, then garbles or refuses
  offers: new calls get 503 and are not relayed, the node stays up and
  logs why.
"""
import signal
import socket
import threading

import harness as h
from harness import nodes, rtpengine
from harness.rtpengine import bdecode, bencode, media_flows, sdp_media
from harness.ua import call, hang_up

t = h.Test(__file__)

CALLS = 4


def two_relays(ctx):
    return (rtpengine.start(ctx, name='rtp_a', ip='127.0.0.30'),
            rtpengine.start(ctx, name='rtp_b', ip='127.0.0.31'))


def calls(ctx, relays, policy=None):
    """CALLS calls through a new rehomed anchoring in `relays`."""
    rh = ctx.rehomed(policy=policy,
                     extra=['media_relay %s' % r.ng for r in relays])
    # a relay is down until it answers its first ping
    assert h.wait_until(lambda: all(
        r['state'] == 'up' for r in rtpengine.relays(rh).values()), 3)
    pairs = [rtpengine.endpoints(ctx) for _ in range(CALLS)]
    for caller, callee in pairs:
        call(rh.sip_addr, caller, callee, direct=True)
    return rh, pairs


def dialogs_by_relay(rh):
    status, data = rh.ctl.get('/v1/dialogs')
    assert status == 200, data
    by = {}
    for d in data['dialogs']:
        by.setdefault(d['media_relay'], set()).add(d['callid'])
    return by


def ng_ids(rh):
    """{Call-ID: the ng call-id of its dialog}"""
    return {d['callid']: 'rh-' + d['did']
            for d in rh.ctl.get('/v1/dialogs')[1]['dialogs']}


def busiest(rh, a, b):
    """(relay with most calls, the other, the Call-IDs on the first)"""
    by = dialogs_by_relay(rh)
    src = a if len(by.get(a.ng, ())) >= len(by.get(b.ng, ())) else b
    return src, (b if src is a else a), by.get(src.ng, set())


def pump(pairs, until, timeout=20.0):
    """Let every endpoint answer what comes (re-INVITEs) until until()."""
    def step():
        for caller, callee in pairs:
            caller.recv(0.01)
            callee.recv(0.01)
        return until()
    assert h.wait_until(step, timeout, interval=0), 'timed out'


def reinvite_sdp(ua):
    """The SDP of the last re-INVITE ua got (the callee's first INVITE is
    the call's own)."""
    invs = [m for m in ua.received if m.is_request and m.method == 'INVITE'
            and m.body]
    if ua.name == 'bob':
        invs = invs[1:]
    return invs[-1].body if invs else None


def check_moved(pairs, moved_ids, relay):
    """The moved calls' legs were re-INVITEd to `relay` and RTP flows."""
    for caller, callee in pairs:
        to_caller, to_callee = reinvite_sdp(caller), reinvite_sdp(callee)
        if caller.call_id not in moved_ids:
            assert not to_caller, 'a call not on the old relay was moved'
            continue
        assert to_caller and to_callee, 'a leg got no re-INVITE'
        assert sdp_media(to_caller)[0] == relay.ip, to_caller
        assert sdp_media(to_callee)[0] == relay.ip, to_callee
        media_flows(caller, callee, to_caller, to_callee)


def job_state(rh, job):
    return rh.ctl.get('/v1/jobs/%d' % job['job'])[1]


@t.test
def move_api(ctx):
    a, b = two_relays(ctx)
    rh, pairs = calls(ctx, (a, b))
    src, dst, moving = busiest(rh, a, b)

    status, job = rh.ctl.post('/v1/media/move',
                              {'from': src.ng, 'to': dst.ng})
    assert status == 202, (status, job)
    assert job['kind'] == 'media' and job['to'] == dst.ng and \
        job['from'] == src.ng, job
    pump(pairs, lambda: job_state(rh, job)['state'] == 'done')
    done = job_state(rh, job)
    assert done['moved'] == len(moving) and done['failed'] == 0, done
    assert set(dialogs_by_relay(rh)) == {dst.ng}, dialogs_by_relay(rh)
    check_moved(pairs, moving, dst)
    ids = ng_ids(rh)
    for call_id in moving:   # both legs moved: the old relay forgot it
        assert dst.knows(ids[call_id]), call_id
        assert h.wait_until(lambda: not src.knows(ids[call_id]), 3), \
            'the old relay still has %s' % call_id

    code, out, _ = nodes.rehomectl(rh, 'media', 'relays')
    assert code == 0 and a.ng in out and b.ng in out, out

    for body, code in (({'from': a.ng}, 400),
                       ({'from': a.ng, 'to': a.ng}, 400),
                       ({'from': a.ng, 'to': 'udp:127.0.0.1:9'}, 404),
                       ({'from': a.ng, 'to': b.ng, 'count': 1,
                         'tag': 'service'}, 400)):
        status, err = rh.ctl.post('/v1/media/move', body)
        assert status == code, (body, status, err)
        assert err.get('error'), err

    for caller, callee in pairs:
        hang_up(caller, callee)
    assert h.wait_until(lambda: rh.active_dialogs() == 0, 3)


@t.test
def relay_killed(ctx):
    a, b = two_relays(ctx)
    rh, pairs = calls(ctx, (a, b),
                      policy=h.SRC + '/policies/media_failover.lua')
    victim, survivor, moving = busiest(rh, a, b)

    victim.popen.send_signal(signal.SIGKILL)
    pump(pairs, lambda: [j for j in rh.ctl.get('/v1/jobs')[1]['jobs']
                         if j['kind'] == 'media' and j['state'] == 'done'])
    assert set(dialogs_by_relay(rh)) == {survivor.ng}, dialogs_by_relay(rh)
    assert rh.wait_log(r'media_failover: moving the calls of ' +
                       victim.ng.replace('.', r'\.')), 'no log line'
    check_moved(pairs, moving, survivor)
    assert rh.active_dialogs() == CALLS, rh.dialog_counts()
    for caller, callee in pairs:
        hang_up(caller, callee)


class FakeRelay:
    """An ng server that answers ping, and garbles or refuses the rest."""

    def __init__(self, mode):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((h.ENGINE_IP, h.free_port()))
        self.sock.settimeout(0.1)
        self.ng = 'udp:%s:%d' % self.sock.getsockname()
        self.mode, self.offers, self.running = mode, 0, True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.running:
            try:
                data, src = self.sock.recvfrom(65535)
            except OSError:
                continue
            cookie, _, body = data.partition(b' ')
            if bdecode(body)[0].get('command') == 'ping':
                reply = bencode({'result': 'pong'})
            elif self.mode == 'garbled':
                self.offers += 1
                reply = b'd6:resul\\x00\\xff'
            else:
                self.offers += 1
                reply = bencode({'result': 'error',
                                 'error-reason': 'no ports left'})
            self.sock.sendto(cookie + b' ' + reply, src)

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


@t.test
def garbled_relay(ctx):
    for mode in ('garbled', 'error'):
        fake = FakeRelay(mode)
        try:
            caller, callee = rtpengine.endpoints(ctx)
            rh = ctx.rehomed(name='rh_' + mode,
                             extra=['media_relay %s' % fake.ng])
            assert h.wait_until(lambda: list(rtpengine.relays(rh).values())
                                [0]['state'] == 'up', 3)
            caller.call_id = '%s@%s' % (mode, caller.ip)
            caller.local, caller.remote = '<sip:alice@x>', '<sip:bob@x>'
            inv = caller.request('INVITE', 'sip:bob@%s:%d' % (
                callee.ip, callee.peer.port), body=caller.sdp)
            caller.send(inv, rh.sip_addr)
            final = caller.final(inv, timeout=5)
            assert final and final.status == 503, final and final.status
            assert fake.offers >= 1, 'the relay was never asked'
            assert not callee.requests_received(0.2), 'INVITE relayed'
            assert rh.alive(), 'rehomed died'
            assert rh.wait_log(r'SDP not taken by media relay'), 'no log'
        finally:
            fake.close()


t.main()
