"""test_rehome_baresip.py  Real clients: a baresip pair survives a fail-over.

alice (baresip) calls bob (baresip, auto-answer) through node 1; node 1
is killed with SIGKILL, node 2 re-homes the call (both baresips get a
re-INVITE with node 2's Contact and follow it). Then one side hangs up
(alice in one test, bob in the other): its BYE reaches node 2, which
relays it, so the other side sees the call closed by its peer and node 2
ends the dialog on the BYE's 200.

baresip is driven through its ctrl_tcp module (netstring JSON commands
and events), audio through aubridge/nil, so no sound device is needed.
"""
import json
import os
import socket
import time

import harness as h
from harness import nodes as lib

t = h.Test(__file__)


class Baresip(h.Proc):
    """baresip with its own config dir, auto-answer, ctrl_tcp."""

    def __init__(self, ctx, name, user, ip):
        self.port = h.free_port()
        self.ctrl_port = h.free_port()
        rtp = h.free_port(10)
        self.uri = 'sip:%s@%s:%d' % (user, ip, self.port)
        cfg = ctx.path(name)
        os.makedirs(cfg)
        with open(os.path.join(cfg, 'config'), 'w') as f:
            f.write('\n'.join([
                'sip_listen %s:%d' % (ip, self.port),
                'module_path /usr/lib/baresip/modules',
                'module g711.so', 'module aubridge.so',
                'module account.so', 'module menu.so',
                'module ctrl_tcp.so',
                'ctrl_tcp_listen 127.0.0.1:%d' % self.ctrl_port,
                'audio_player aubridge,nil', 'audio_source aubridge,nil',
                'audio_alert aubridge,nil',
                'rtp_ports %d-%d' % (rtp, rtp + 9), '']))
        with open(os.path.join(cfg, 'accounts'), 'w') as f:
            f.write('<%s>;regint=0;answermode=auto;audio_codecs=pcmu\n' %
                    self.uri)
        super().__init__(name, ['baresip', '-f', cfg],
                         ctx.path(name + '.log'))
        ctx.procs.append(self)
        self.sock = None
        self.buf = b''
        self.seen = []

    def start(self):
        super().start()
        ok = h.wait_until(lambda: h.port_bound('127.0.0.1', self.ctrl_port,
                                               'tcp'), 5)
        assert ok, '%s: no ctrl_tcp:\n%s' % (self.name, self.log_tail())
        self.sock = socket.create_connection(('127.0.0.1', self.ctrl_port),
                                             5)
        return self

    def cmd(self, command, params=''):
        data = json.dumps({'command': command, 'params': params,
                           'token': command}).encode()
        self.sock.sendall(b'%d:%s,' % (len(data), data))

    def _read(self):
        self.sock.settimeout(0.1)
        try:
            self.buf += self.sock.recv(65536)
        except socket.timeout:
            pass
        while b':' in self.buf:
            n, _, rest = self.buf.partition(b':')
            if len(rest) < int(n) + 1:
                break
            self.seen.append(json.loads(rest[:int(n)]))
            self.buf = rest[int(n) + 1:]

    def wait_event(self, kind, timeout=5.0):
        """The first event of that type (kept, so order does not
        matter), or None."""
        def find():
            self._read()
            return next((e for e in self.seen if e.get('type') == kind),
                        None)
        return h.wait_until(find, timeout)


def failover(ctx, hangup_by_caller):
    alice = Baresip(ctx, 'alice', 'alice', h.CALLER_IP).start()
    bob = Baresip(ctx, 'bob', 'bob', h.CALLEE_IP).start()
    node1, node2 = lib.cluster(ctx, 'udp:%s:%d' % (h.CALLEE_IP, bob.port))

    alice.cmd('dial', 'sip:bob@%s' % node1.sip_addr)
    for ua in (alice, bob):
        assert ua.wait_event('CALL_ESTABLISHED'), '%s: %s' % (ua.name,
                                                              ua.seen)
    assert h.wait_until(lambda: lib.replicas(node2) == 1, 5), \
        node2.dialog_counts()

    lib.kill(ctx, node1)
    assert h.wait_until(lambda: lib.node_state(node2, 'node1') == 'down',
                        5)
    rc, out, err = lib.rehomectl(node2, 'rehome', 'service')
    assert rc == 0 and '1 moved, 0 failed' in out, (rc, out, err)

    hanger, other = (alice, bob) if hangup_by_caller else (bob, alice)
    time.sleep(0.5)
    hanger.cmd('hangup')
    closed = other.wait_event('CALL_CLOSED')
    assert closed, '%s never saw the call end: %s' % (other.name,
                                                      other.seen)
    assert h.wait_until(lambda: node2.active_dialogs() == 0, 5), \
        node2.dialog_counts()
    assert lib.metric(node2, 'rehome_sip_requests_received_total'
                      '{method="BYE"}') == 1, 'node2 got no BYE'


@t.test
def caller_hangs_up(ctx):
    failover(ctx, True)


@t.test
def callee_hangs_up(ctx):
    failover(ctx, False)


t.main()
