"""test_proxy_tcp.py  Calls over TCP, and across transports.

A TCP call end to end proves the TCP listener, connection reuse for
responses and in-dialog requests, and ";transport=tcp" in the Contact
rehomed gives. The mixed call (caller on UDP, callee on TCP) proves that
each leg keeps its own transport.
"""
import harness as h

t = h.Test(__file__)


def contacts(result):
    return [m.header('Contact') for m in result.select('received')
            if m.header('Contact')]


@t.test
def tcp_call(ctx):
    rh, uac, uas = ctx.proxied('uac.xml', 'uas.xml', transport='tcp',
                               caller={'duration': 300})
    caller, callee = h.run_pair(uac, uas)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    for side in (caller, callee):
        assert {m.transport for m in side.messages} == {'TCP'}, \
            'not all over TCP'
        assert contacts(side), 'no Contact received'
        assert all('transport=tcp' in c.lower() for c in contacts(side)), \
            'Contact without transport=tcp: %s' % contacts(side)


@t.test
def udp_caller_tcp_callee(ctx):
    rh, uac, uas = ctx.proxied('uac.xml', 'uas.xml', transport='tcp',
                               caller={'duration': 300,
                                       'transport': 'udp'})
    caller, callee = h.run_pair(uac, uas)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    assert {m.transport for m in caller.messages} == {'UDP'}
    assert {m.transport for m in callee.messages} == {'TCP'}
    assert not any('transport=tcp' in c.lower() for c in contacts(caller)), \
        'TCP Contact given to the UDP caller: %s' % contacts(caller)
    assert all('transport=tcp' in c.lower() for c in contacts(callee)), \
        'Contact without transport=tcp: %s' % contacts(callee)


t.main()
