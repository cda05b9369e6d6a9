"""test_dns.py  Next hops by name, resolved as RFC 3263 says.

dnsmasq serves made-up names on a loopback port (rehomed's dns_server);
sipp plays the callers and the callees. What is checked:
  srv_failover_on_503   upstream sip:callee.test: NAPTR (SIP+D2U) gives
                        the SRV name, SRV two targets; the one of lower
                        priority is tried first, answers 503, and the call
                        goes to the other one;
  naptr_tcp_refused     NAPTR says TCP; the first SRV target refuses the
                        connection (a transport error) and the next takes
                        the call, over TCP;
  request_uri_host      no upstream: the Request-URI's host is resolved
                        the same way (SRV, then A);
  ipv6_target           a target with only an AAAA record is reached
                        from rehomed's IPv6 listener (and answers);
  cached_for_ttl        calls within the records' TTL ask the server once
                        (rehomed's cache, dnscache.c), a call after it
                        asks again.
"""
import time

import harness as h
from harness.dns import Dnsmasq

t = h.Test(__file__)

OTHER_CALLEE_IP = '127.0.0.21'


def engine(ctx, dns, **kw):
    return ctx.rehomed(extra=['dns_server %s' % dns.addr], **kw)


@t.test
def srv_failover_on_503(ctx):
    busy = ctx.sipp('uas_503.xml', ip=h.CALLEE_IP)
    ok = ctx.sipp('uas.xml', ip=OTHER_CALLEE_IP)
    dns = Dnsmasq(ctx, naptr=[('callee.test', 10, 50, 's', 'SIP+D2U', '',
                               '_sip._udp.callee.test')],
                  srv=[('_sip._udp.callee.test', 'b.callee.test', ok.port,
                        20, 0),
                       ('_sip._udp.callee.test', 'a.callee.test',
                        busy.port, 10, 0)],
                  host=[('a.callee.test', h.CALLEE_IP),
                        ('b.callee.test', OTHER_CALLEE_IP)]).start()
    rh = engine(ctx, dns, upstream='sip:callee.test')
    busy.start()
    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=rh.sip_addr)
    caller, callee = h.run_pair(uac, ok)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    assert busy.result(timeout=3).select('sent', status=503), \
        'the first SRV target never got the INVITE'
    assert ('NAPTR', 'callee.test') in dns.queries(), dns.queries()


@t.test
def naptr_tcp_refused(ctx):
    closed = h.free_port()   # nothing listens there
    ok = ctx.sipp('uas.xml', ip=h.CALLEE_IP, transport='tcp')
    dns = Dnsmasq(ctx, naptr=[('callee.test', 10, 50, 's', 'SIP+D2T', '',
                               '_sip._tcp.callee.test')],
                  srv=[('_sip._tcp.callee.test', 'a.callee.test', closed,
                        10, 0),
                       ('_sip._tcp.callee.test', 'a.callee.test', ok.port,
                        20, 0)],
                  host=[('a.callee.test', h.CALLEE_IP)]).start()
    rh = engine(ctx, dns, upstream='sip:callee.test')
    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=rh.sip_addr)
    caller, callee = h.run_pair(uac, ok)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()


@t.test
def request_uri_host(ctx):
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP)
    dns = Dnsmasq(ctx, srv=[('_sip._udp.callee.test', 'a.callee.test',
                             uas.port, 10, 0)],
                  host=[('a.callee.test', h.CALLEE_IP)]).start()
    rh = engine(ctx, dns)
    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=rh.sip_addr,
                   ruri='sip:bob@callee.test')
    caller, callee = h.run_pair(uac, uas)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    assert ('SRV', '_sip._udp.callee.test') in dns.queries(), dns.queries()



@t.test
def ipv6_target(ctx):
    """A busy callee (its scenarios follow IPv4 Contacts only): the 486
    coming back proves the way there and back."""
    uas = ctx.sipp('uas_busy.xml', ip='::1')
    dns = Dnsmasq(ctx, srv=[('_sip._udp.callee.test', 'c.callee.test',
                             uas.port, 10, 0)],
                  host=[('c.callee.test', '::1')]).start()
    port = h.free_port()
    rh = engine(ctx, dns, upstream='sip:callee.test',
                listens=['udp:%s:%d tag=public' % (h.ENGINE_IP, port),
                         'udp:[::1]:%d tag=public' % port])
    uac = ctx.sipp('uac_busy.xml', ip=h.CALLER_IP, remote=rh.sip_addr)
    caller, callee = h.run_pair(uac, uas)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()   # the INVITE reached [::1]



@t.test
def cached_for_ttl(ctx):
    ttl = 2
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=3)
    dns = Dnsmasq(ctx, naptr=[('callee.test', 10, 50, 's', 'SIP+D2U', '',
                               '_sip._udp.callee.test')],
                  srv=[('_sip._udp.callee.test', 'a.callee.test',
                        uas.port, 10, 0)],
                  host=[('a.callee.test', h.CALLEE_IP)], ttl=ttl).start()
    rh = engine(ctx, dns, upstream='sip:callee.test')
    uas.start()

    def calls(n):
        uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=rh.sip_addr,
                       calls=n)
        uac.start()
        result = uac.result()
        assert result.ok, result.why()

    calls(2)
    assert len(dns.queries('NAPTR')) == 1, dns.queries()
    assert len(dns.queries('SRV')) == 1, dns.queries()
    time.sleep(ttl + 1)
    calls(1)
    assert len(dns.queries('NAPTR')) == 2, dns.queries()
    assert uas.result(timeout=5).ok


t.main()
