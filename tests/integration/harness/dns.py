"""dns.py  dnsmasq as the DNS server of a test: SRV, NAPTR, A and AAAA
records for made-up names, on a loopback port.

dnsmasq (package dnsmasq-base) serves only what the test gives it: no
/etc/resolv.conf, no /etc/hosts, no upstream. Each record is one of its
options: srv=("_sip._udp.callee.test", "a.callee.test", port, priority,
weight), naptr=("callee.test", order, preference, "s", "SIP+D2U", "",
"_sip._udp.callee.test"), host=("a.callee.test", "127.0.0.20"[, "::1"]).
Queries are logged, so a test can count them. Imported on its own
(`from harness.dns import Dnsmasq`).
"""
import re

from .common import ENGINE_IP, TestFailure, free_port, port_bound, \
    wait_until
from .procs import Proc


class Dnsmasq(Proc):
    def __init__(self, ctx, srv=(), naptr=(), host=(), ttl=60):
        self.port = free_port()
        self.addr = '%s:%d' % (ENGINE_IP, self.port)
        argv = ['dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null',
                '--no-resolv', '--no-hosts', '--no-poll', '--pid-file=',
                '--port=%d' % self.port, '--listen-address=' + ENGINE_IP,
                '--bind-interfaces', '--user=root', '--log-queries',
                '--log-facility=-', '--local-ttl=%d' % ttl]
        argv += ['--srv-host=' + ','.join(map(str, r)) for r in srv]
        argv += ['--naptr-record=' + ','.join(map(str, r)) for r in naptr]
        argv += ['--host-record=' + ','.join(map(str, r)) for r in host]
        super().__init__('dnsmasq', argv, ctx.path('dnsmasq.log'))
        ctx.procs.append(self)

    def start(self, timeout=5.0):
        super().start()
        if not wait_until(lambda: not self.alive() or
                          port_bound(ENGINE_IP, self.port), timeout) or \
                not self.alive():
            raise TestFailure('dnsmasq did not start:\n' + self.log_tail())
        return self

    def queries(self, qtype=None):
        """[(type, name)] of the queries it answered so far."""
        found = re.findall(r'query\[(\w+)\] (\S+) from', self.log())
        return [q for q in found if qtype is None or q[0] == qtype]
