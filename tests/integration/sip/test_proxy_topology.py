"""test_proxy_topology.py  Topology hiding, checked on what each side got.

One call with a re-INVITE from each side and a BYE, so that requests and
responses cross in both directions; then, for every message each endpoint
actually received:
- no header and no body holds the other side's IP (127.0.0.10 / .20);
- no Record-Route or Route at all, and exactly one Via: the endpoint's
  own on responses, rehomed's on requests;
- every Contact is rehomed's "rh-<did>-<leg>-<key>" at the listener;
- the two legs have different Call-IDs.
The same checks run on a TCP call.
"""
import re

import harness as h

t = h.Test(__file__)


def assert_hidden(side, own_ip, other_ip, rh):
    got = side.select('received')
    assert len(got) >= 6, '%s received only %d messages' % (side.name,
                                                            len(got))
    leaks = h.headers_containing(got, [other_ip])
    assert not leaks, '%s saw the other side: %s' % (side.name, leaks)
    bodies = [m.start_line for m in got if other_ip in m.body]
    assert not bodies, '%s got bodies naming %s: %s' % (side.name,
                                                        other_ip, bodies)
    contact = re.compile(r'^<?sip:rh-[0-9a-f]{16}-[ab]-[0-9a-f]{16}@%s[>;]'
                         % re.escape(rh.sip_addr))
    for m in got:
        for name in ('Record-Route', 'Route'):
            assert not m.header_all(name), '%s in %s: %s' % (
                name, m.start_line, m.header_all(name))
        vias = m.header_all('Via')
        assert len(vias) == 1 and ',' not in vias[0], \
            '%s: Vias %s' % (m.start_line, vias)
        want = rh.sip_addr if m.is_request else own_ip
        assert want in vias[0], '%s: Via %s, not %s' % (m.start_line,
                                                          vias[0], want)
        for c in m.header_all('Contact'):
            assert contact.match(c), '%s: Contact %s' % (m.start_line, c)
    assert any(m.header('Contact') for m in got), 'no Contact seen'


def hidden_call(ctx, transport):
    rh, uac, uas = ctx.proxied('uac_reinvite.xml', 'uas_reinvite.xml',
                               transport=transport,
                               caller={'duration': 800},
                               callee={'duration': 200})
    caller, callee = h.run_pair(uac, uas)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    assert caller.select('received', 'INVITE'), 'callee re-INVITE missing'
    assert len(callee.select('received', 'INVITE')) == 2, \
        'caller re-INVITE missing'

    assert_hidden(caller, h.CALLER_IP, h.CALLEE_IP, rh)
    assert_hidden(callee, h.CALLEE_IP, h.CALLER_IP, rh)
    caller_ids = {m.call_id for m in caller.messages}
    callee_ids = {m.call_id for m in callee.messages}
    assert len(caller_ids) == 1 and len(callee_ids) == 1, \
        'Call-IDs: %s / %s' % (caller_ids, callee_ids)
    assert caller_ids != callee_ids, 'same Call-ID on both legs'


@t.test
def hidden_udp(ctx):
    hidden_call(ctx, 'udp')


@t.test
def hidden_tcp(ctx):
    hidden_call(ctx, 'tcp')


t.main()
