"""test_proxy_requests.py  Requests rehomed answers itself.

- OPTIONS addressed to rehomed gets 200 (keep-alive probes of endpoints
  and load balancers), on UDP;
- an INVITE with Max-Forwards: 0 gets 483 and is not relayed;
- an in-dialog request (To tag) for a dialog rehomed does not have gets
  481, whether its Request-URI carries an unknown did (with a key or
  without) or none at all.
Each answer must be the one final response of its transaction, with the
sender's own Via.
"""
import harness as h

t = h.Test(__file__)


def final(peer, request, dst):
    """Send `request`, return its final response (asserting there is
    one and exactly one)."""
    peer.send(request, dst)
    got = [m for m in peer.recv(timeout=2.0) if m.status >= 200]
    assert len(got) == 1, 'final responses: %s' % got
    assert peer.ip in got[0].header('Via'), 'Via: ' + got[0].header('Via')
    return got[0]


@t.test
def options_to_engine(ctx):
    rh = ctx.rehomed()
    peer = ctx.udp()
    resp = final(peer, peer.request('OPTIONS', 'sip:%s' % rh.sip_addr),
                 rh.sip_addr)
    assert resp.status == 200, resp.start_line


@t.test
def max_forwards_zero(ctx):
    callee = ctx.udp(h.CALLEE_IP)
    rh = ctx.rehomed(upstream='udp:%s:%d' % (callee.ip, callee.port))
    peer = ctx.udp()
    resp = final(peer, peer.request('INVITE', 'sip:bob@example.com',
                                    max_forwards=0), rh.sip_addr)
    assert resp.status == 483, resp.start_line
    assert not callee.recv(timeout=0.5), 'INVITE relayed with MF 0'
    assert rh.active_dialogs() == 0, 'dialog created: %s' % \
        rh.dialog_counts()


@t.test
def unknown_dialog_481(ctx):
    rh = ctx.rehomed()
    peer = ctx.udp()
    for ruri in ('sip:rh-0123456789abcdef-a-0123456789abcdef@%s' %
                 rh.sip_addr,
                 'sip:rh-0123456789abcdef-a@%s' % rh.sip_addr,
                 'sip:%s' % rh.sip_addr):
        for method in ('BYE', 'INVITE'):
            req = peer.request(method, ruri, cseq=5).replace(
                'To: <sip:bob@example.com>',
                'To: <sip:bob@example.com>;tag=nosuchdialog')
            resp = final(peer, req, rh.sip_addr)
            assert resp.status == 481, '%s %s: %s' % (method, ruri,
                                                      resp.start_line)


t.main()
