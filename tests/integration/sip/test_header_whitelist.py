"""test_header_whitelist.py  Topology hiding is a whitelist of headers.

Two raw-socket endpoints (harness.rawua) make a call through rehomed with
`pass_header X-Account`. Each request and response carries the headers
that can name the other side: Warning, Path, History-Info, Server,
User-Agent, X- headers, a P-Asserted-Identity whose host is an IP
address, a Replaces and a Target-Dialog naming the sender's dialog and
another one, a Refer-To with an embedded Replaces; and end-to-end ones
(Subject, Allow, Supported, a P-Asserted-Identity with a name).

- headers_whitelisted: what the callee gets in the INVITE and the caller
  in the 200 holds none of the dropped headers and nothing of the other
  side (its IP, Call-ID, Server name); the end-to-end headers and
  X-Account arrive verbatim. In a re-INVITE, a Replaces naming the
  sender's dialog arrives with the receiver's Call-ID, the tags kept;
  one naming another dialog, and the Refer-To's Replaces, are gone.
- redirect_contact_kept: a 302 from the callee reaches the caller with
  the callee's Contact as it was (the engine's own no longer overwrites
  it): the redirect is passed on, not followed (docs/design.md).
"""
import harness as h
from harness import rawua

t = h.Test(__file__)

LEAKY = ['Warning: 399 %(ip)s "internal trouble"',
         'Path: <sip:%(ip)s;lr>',
         'History-Info: <sip:hidden@%(ip)s>;index=1',
         'Server: HiddenPBX/%(ip)s',
         'User-Agent: HiddenPhone/%(ip)s',
         'X-Internal-Host: %(ip)s',
         'P-Asserted-Identity: <sip:someone@%(ip)s>',
         'Target-Dialog: secret-%(ip)s;local-tag=1;remote-tag=2',
         'Refer-To: <sip:carol@example.com?Replaces=secret%%40%(ip)s'
         '%%3Bto-tag%%3D1%%3Bfrom-tag%%3D2>']
E2E = ['Subject: lunch', 'Supported: timer',
       'P-Asserted-Identity: "Alice" <sip:alice@example.com>',
       'X-Account: 4711']
DROPPED = ['Warning', 'Path', 'History-Info', 'Server', 'User-Agent',
           'X-Internal-Host', 'Target-Dialog']


def with_headers(text, lines):
    """text (a message) with lines added after its first line."""
    head, _, rest = text.partition('\r\n')
    return '\r\n'.join([head] + lines) + '\r\n' + rest


def assert_whitelisted(msg, other_ip, what):
    for name in DROPPED:
        assert not msg.header_all(name), '%s: %s crossed: %s' % (
            what, name, msg.header_all(name))
    assert other_ip not in msg.raw, '%s names %s:\n%s' % (what, other_ip,
                                                          msg.raw)
    assert 'secret' not in msg.raw, '%s: a foreign dialog crossed' % what
    for line in E2E:
        name, _, value = line.partition(': ')
        assert value in msg.header_all(name), '%s: no %s' % (what, line)
    refer = msg.header('Refer-To')
    assert refer == '<sip:carol@example.com>', '%s: Refer-To %s' % (
        what, refer)


@t.test
def headers_whitelisted(ctx):
    caller = rawua.Ua(ctx, h.CALLER_IP)
    callee = rawua.Ua(ctx, h.CALLEE_IP)
    rh = ctx.rehomed(upstream='udp:%s' % callee.addr,
                     extra=["pass_header X-Account"])
    call = rawua.Call(caller, callee, rh.sip_addr)

    # INVITE: the caller's side leaks, the callee must see none of it
    call.caller = rawua.Leg(caller, 'c%d@%s' % (caller.port, caller.ip),
                            '<sip:alice@example.com>;tag=a1',
                            '<sip:bob@example.com>',
                            'sip:bob@%s' % rh.sip_addr, 0)
    invite = call.caller.request('INVITE', body=rawua.SDP_CALLER)
    leaks = [line % {'ip': h.CALLER_IP} for line in LEAKY] + E2E
    call.caller.send(with_headers(invite, leaks + [
        'Replaces: %s;to-tag=x;from-tag=y' % call.caller.call_id]))
    inv = callee.expect(rawua.is_request('INVITE'), 'INVITE')
    assert_whitelisted(inv, h.CALLER_IP, 'INVITE at the callee')
    assert not inv.header_all('Replaces'), \
        'a Replaces in a new dialog crossed: %s' % inv.header('Replaces')

    # 200: the callee's side leaks, the caller must see none of it
    tag = 'b1'
    ok = rawua.response(inv, 200, 'OK', tag, callee.contact('bob'),
                        rawua.SDP_CALLEE)
    callee.send(with_headers(ok, [line % {'ip': h.CALLEE_IP}
                                  for line in LEAKY] + E2E),
                rawua.via_addr(inv))
    got = call.ok_received()
    assert_whitelisted(got, h.CALLEE_IP, '200 at the caller')
    call.ack()
    callee.expect(rawua.is_request('ACK'), 'ACK')
    call.callee = rawua.Leg(callee, inv.call_id,
                            inv.header('To') + ';tag=' + tag,
                            inv.header('From'), caller.contact('ua'), 0)

    # re-INVITE: Replaces naming the sender's own dialog is renamed
    reinv = call.caller.request('INVITE', body=rawua.SDP_CALLER)
    call.caller.send(with_headers(reinv, [
        'Replaces: %s;to-tag=b1;from-tag=a1' % call.caller.call_id,
        'Join: other-dialog@%s;to-tag=1;from-tag=2' % h.CALLER_IP]))
    got = callee.expect(rawua.is_request('INVITE'), 're-INVITE')
    assert got.header('Replaces') == '%s;to-tag=b1;from-tag=a1' % \
        inv.call_id, 'Replaces: %s' % got.header('Replaces')
    assert not got.header_all('Join'), 'Join: %s' % got.header('Join')


@t.test
def redirect_contact_kept(ctx):
    caller = rawua.Ua(ctx, h.CALLER_IP)
    callee = rawua.Ua(ctx, h.CALLEE_IP)
    rh = ctx.rehomed(upstream='udp:%s' % callee.addr)
    call = rawua.Call(caller, callee, rh.sip_addr)
    call.send_invite()
    inv = callee.expect(rawua.is_request('INVITE'), 'INVITE')
    moved = rawua.response(inv, 302, 'Moved Temporarily', 'b1',
                           'sip:carol@192.0.2.5:5070')
    callee.send(moved, rawua.via_addr(inv))
    got = caller.expect(rawua.is_response(302), '302')
    assert got.header_all('Contact') == ['<sip:carol@192.0.2.5:5070>'], \
        'Contact of the 302: %s' % got.header_all('Contact')
    call.ack_failure(got)


t.main()
