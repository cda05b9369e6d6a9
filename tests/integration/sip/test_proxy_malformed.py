"""test_proxy_malformed.py  Malformed input: 400 or silence, never a crash.

Garbage bytes, requests missing a mandatory header, a huge header, bad
CSeq values, another SIP version, a lying Content-Length, a bare CR, a
NUL and a Max-Forwards that would wrap are sent from a plain UDP socket
(and garbage over TCP). Each may get 400 and nothing else (the other
version 505), none may be relayed to the callee, and afterwards rehomed
must still be alive and relay a normal call. Run it against a sanitizer build
(REHOMED=build-asan/rehomed) to catch memory errors on the way: the
harness fails the test on any sanitizer report in rehomed's log.

malformed_responses: in a call between raw-socket endpoints, the callee
answers the INVITE with provisional responses that each hold one of the
same faults (a bare CR, a NUL, a Content-Length, CSeq or status code
out of range), then a sound 183: only the 183 reaches the caller, and
the call still completes with the callee's 200.
"""
import random
import socket

import harness as h
from harness import rawua

t = h.Test(__file__)


def cases(peer, rh):
    """name -> bytes of each malformed message."""
    def invite(**change):
        req = peer.request('INVITE', 'sip:bob@example.com',
                           body='v=0\r\n')
        for old, new in change.items():
            old = old.replace('_', '-') + ':'
            start = req.index(old)
            end = req.index('\r\n', start) + 2
            req = req[:start] + (new + '\r\n' if new else '') + req[end:]
        return req.encode()

    rnd = random.Random(7)
    return {
        'random bytes': bytes(rnd.randrange(256) for _ in range(700)),
        'text, no SIP': b'hello rehome\r\n\r\n',
        'another SIP version': invite().replace(b'SIP/2.0\r\n', b'SIP/3.0\r\n',
                                           1),
        'no Call-ID': invite(Call_ID=''),
        'no CSeq': invite(CSeq=''),
        'no From': invite(From=''),
        'no To': invite(To=''),
        'no Via': invite(Via=''),
        'huge header': invite(From='From: <sip:%s@example.com>;tag=1' %
                              ('x' * 60000)),
        'CSeq not a number': invite(CSeq='CSeq: abc INVITE'),
        'CSeq without method': invite(CSeq='CSeq: 1'),
        'CSeq of another method': invite(CSeq='CSeq: 1 BYE'),
        'CSeq too large': invite(CSeq='CSeq: 99999999999999999999 INVITE'),
        'Content-Length too large': invite(
            Content_Length='Content-Length: 5000'),
        'bare CR (a header smuggled)': invite(
            From='From: <sip:alice@example.com>;tag=1\rX-Smuggled: 1'),
        'NUL in a header': invite(
            From='From: <sip:alice@example.com>;tag=1\0x'),
        'Max-Forwards past 255': invite(
            Max_Forwards='Max-Forwards: 4294967366'),
        'response out of nowhere': b'SIP/2.0 200 OK\r\n\r\n',
    }


def tcp_garbage(rh):
    """Garbage on a TCP connection: whatever comes back is a 400."""
    with socket.create_connection((h.ENGINE_IP, rh.sip_port), 2) as s:
        s.sendall(b'\x00\xff garbage \r\n' * 50 + b'\r\n\r\n')
        s.settimeout(1.0)
        try:
            reply = s.recv(65535)
        except (socket.timeout, ConnectionResetError):
            reply = b''
    assert not reply or reply.startswith(b'SIP/2.0 400'), reply[:80]


@t.test
def malformed_then_call(ctx):
    callee = ctx.udp(h.CALLEE_IP)
    rh = ctx.rehomed(upstream='udp:%s:%d' % (callee.ip, callee.port))
    peer = ctx.udp()
    wrong = []
    seen = set()   # Vias of relayed INVITEs: later copies are retransmits
    for name, data in cases(peer, rh).items():
        peer.send(data, rh.sip_addr)
        answers = peer.recv(timeout=0.5, until_final=False)
        relayed = {m.header('Via'): m.start_line for m in
                   callee.recv(timeout=0.1, until_final=False)
                   if m.header('Via') not in seen}
        seen.update(relayed)
        assert rh.alive(), 'rehomed died on: ' + name
        allowed = 505 if name == 'another SIP version' else 400
        if any(m.status != allowed for m in answers) or relayed:
            wrong.append('%s: answered %s, relayed %s' % (
                name, [m.start_line for m in answers],
                list(relayed.values())))
    assert not wrong, '\n  '.join(['not dropped nor 400:'] + wrong)
    tcp_garbage(rh)
    assert rh.alive(), 'rehomed died on TCP garbage'

    callee.close()
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, port=callee.port)
    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=rh.sip_addr)
    caller, callee_res = h.run_pair(uac, uas)
    assert caller.ok, caller.why()
    assert callee_res.ok, callee_res.why()



def faulty_ringing(inv):
    """name -> a 180 to inv with one fault."""
    good = rawua.response(inv, 180, 'Ringing', 'b1')

    def swap(old, new):
        assert old in good, old
        return good.replace(old, new, 1)

    cseq = 'CSeq: ' + inv.header('CSeq')
    return {
        'bare CR': swap('Content-Length: 0', 'X-A: 1\rX-B: 2\r\n'
                        'Content-Length: 0'),
        'NUL': swap('Content-Length: 0', 'Subject: a\0b\r\n'
                    'Content-Length: 0'),
        'Content-Length past 2^32': swap('Content-Length: 0',
                                         'Content-Length: 4294967296'),
        'CSeq past 2^31': swap(cseq, 'CSeq: 4294967297 INVITE'),
        'status code 099': swap('SIP/2.0 180', 'SIP/2.0 099'),
    }


@t.test
def malformed_responses(ctx):
    caller = rawua.Ua(ctx, h.CALLER_IP)
    callee = rawua.Ua(ctx, h.CALLEE_IP)
    rh = ctx.rehomed(upstream='udp:%s' % callee.addr)
    call = rawua.Call(caller, callee, rh.sip_addr)
    call.send_invite()
    inv = callee.expect(rawua.is_request('INVITE'), 'INVITE')
    for name, text in faulty_ringing(inv).items():
        callee.send(text, rawua.via_addr(inv))
    callee.send(rawua.response(inv, 183, 'Session Progress', 'b1'),
                rawua.via_addr(inv))
    got = caller.expect(lambda m: not m.is_request and m.status == 183,
                        'the sound 183')
    leaked = [m.start_line for m in caller.take_all(
        lambda m: not m.is_request and 100 < m.status < 200, 0.3)]
    assert rh.alive(), 'rehomed died'
    assert not leaked, 'faulty responses reached the caller: %s' % leaked
    assert got.header('Subject') is None
    callee.send(rawua.response(inv, 200, 'OK', 'b1', callee.contact('bob'),
                               rawua.SDP_CALLEE), rawua.via_addr(inv))
    call.ok_received()
    call.ack()
    callee.expect(rawua.is_request('ACK'), 'ACK')


t.main()
