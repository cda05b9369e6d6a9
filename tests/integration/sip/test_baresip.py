"""test_baresip.py  Real calls between two baresip clients through rehomed.

sipp follows scripts; baresip (Debian's 1.0.0) is a real user agent with
its own dialog and offer/answer logic, so a call that works here works
with what people deploy. Each client runs from its own config directory
(docs/baresip.md describes the same set-up by hand): g711 for PCMU,
aubridge as a null audio device, menu for the call commands, ctrl_tcp to
drive it: netstring-framed JSON commands ("dial", "hangup", "hold",
"resume") in, responses and events (CALL_ESTABLISHED, CALL_CLOSED, ...)
out.

The caller uses rehomed as its outbound proxy and dials the callee's own
address, so rehomed routes on the Request-URI. Every test also checks
that rehomed holds the call as one confirmed dialog while it is up (the
call did cross rehomed) and keeps no dialog once it has ended.

Addresses: caller on h.CALLER_IP, callee on h.CALLEE_IP, rehomed on
h.ENGINE_IP; every port from the harness (REHOME_TEST_PORTS).
"""
import json
import os
import socket
import time

import harness as h

t = h.Test(__file__)

CALL_TIMEOUT = 10.0


class Baresip(h.Proc):
    """One baresip from a config directory written here, driven through
    ctrl_tcp. outbound: "IP:PORT" of the outbound proxy, or None."""

    def __init__(self, workdir, name, ip, outbound=None):
        self.sip_port = h.free_port(2)  # baresip adds TLS on port + 1
        self.ctrl_port = h.free_port()
        rtp = h.free_port(10)
        self.ip = ip
        self.aor = 'sip:%s@%s:%d' % (name, ip, self.sip_port)
        conf_dir = os.path.join(workdir, name)
        os.makedirs(conf_dir)
        with open(os.path.join(conf_dir, 'config'), 'w') as f:
            f.write(baresip_config(ip, self.sip_port, self.ctrl_port,
                                   rtp, rtp + 9))
        account = '<%s>;regint=0;answermode=auto;audio_codecs=pcmu' % (
            self.aor)
        if outbound:
            account += ';outbound="sip:%s"' % outbound
        with open(os.path.join(conf_dir, 'accounts'), 'w') as f:
            f.write(account + '\n')
        super().__init__(name, ['baresip', '-s', '-f', conf_dir],
                         os.path.join(workdir, name + '.log'))
        self.sock = None
        self.buf = b''
        self.events = []
        self.responses = {}
        self.tokens = 0

    def start(self, timeout=5.0):
        """Start, then connect to ctrl_tcp (it listens once baresip is
        ready)."""
        super().start()
        self.sock = h.wait_until(self._connect, timeout)
        if not self.sock:
            raise h.TestFailure('%s: no ctrl_tcp on %s:%d:\n%s' % (
                self.name, self.ip, self.ctrl_port, self.log_tail()))
        return self

    def _connect(self):
        if not self.alive():
            return None
        try:
            return socket.create_connection((self.ip, self.ctrl_port), 1)
        except OSError:
            return None

    def close(self):
        if self.sock:
            self.sock.close()

    def command(self, command, params=None, timeout=5.0):
        """Run one command; returns its response, asserted ok."""
        self.tokens += 1
        token = '%s-%d' % (self.name, self.tokens)
        msg = {'command': command, 'token': token}
        if params is not None:
            msg['params'] = params
        data = json.dumps(msg).encode()
        self.sock.sendall(b'%d:%s,' % (len(data), data))
        resp = self._read_until(lambda: self.responses.get(token), timeout)
        assert resp, '%s: no response to %s' % (self.name, command)
        assert resp.get('ok'), '%s: %s failed: %s' % (self.name, command,
                                                       resp)
        return resp

    def wait_event(self, kind, count=1, timeout=CALL_TIMEOUT):
        """Wait until `count` events of type `kind` have come; returns the
        last of them."""
        def seen():
            found = [e for e in self.events if e.get('type') == kind]
            return found[count - 1] if len(found) >= count else None
        event = self._read_until(seen, timeout)
        assert event, '%s: no %s (#%d) within %.0fs; events: %s' % (
            self.name, kind, count, timeout,
            [e.get('type') for e in self.events])
        return event

    def event_count(self, kind):
        self._read_until(lambda: False, 0)
        return len([e for e in self.events if e.get('type') == kind])

    def _read_until(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while True:
            value = pred()
            left = deadline - time.monotonic()
            if value or left <= 0:
                return value
            self.sock.settimeout(min(left, 0.2))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise h.TestFailure('%s closed ctrl_tcp:\n%s' % (
                    self.name, self.log_tail()))
            self.buf += data
            self._parse()

    def _parse(self):
        """Split the buffer into netstrings: "LEN:JSON," each."""
        while True:
            length, colon, rest = self.buf.partition(b':')
            if not colon or len(rest) < int(length) + 1:
                return
            msg = json.loads(rest[:int(length)])
            self.buf = rest[int(length) + 1:]
            if msg.get('event'):
                self.events.append(msg)
            elif msg.get('response'):
                self.responses[msg.get('token')] = msg


def baresip_config(ip, sip_port, ctrl_port, rtp_lo, rtp_hi):
    return '\n'.join([
        'poll_method epoll',
        'sip_listen %s:%d' % (ip, sip_port),
        # an IP here: "lo" is refused by baresip 1.0 ("No such device")
        'net_interface %s' % ip,
        'rtp_ports %d-%d' % (rtp_lo, rtp_hi),
        'call_local_timeout 30',
        'audio_player aubridge,nil',
        'audio_source aubridge,nil',
        'audio_alert aubridge,nil',
        'module_path /usr/lib/baresip/modules',
        'module g711.so',
        'module aubridge.so',
        'module_tmp account.so',
        'module_app menu.so',
        'module_app ctrl_tcp.so',
        'ctrl_tcp_listen %s:%d' % (ip, ctrl_port),
    ]) + '\n'


def baresip(ctx, name, ip, outbound=None):
    """A started Baresip, stopped (and its socket closed) by ctx.close()."""
    ua = Baresip(ctx.dir, name, ip, outbound)
    ctx.procs.append(ua)
    ctx.peers.append(ua)
    return ua.start()


def call_up(ctx):
    """rehomed, the callee, the caller, and an established call between
    them: (rehomed, caller, callee)."""
    rh = ctx.rehomed()
    bob = baresip(ctx, 'bob', h.CALLEE_IP)
    alice = baresip(ctx, 'alice', h.CALLER_IP, outbound=rh.sip_addr)
    alice.command('dial', bob.aor)
    alice.wait_event('CALL_ESTABLISHED')
    established = bob.wait_event('CALL_ESTABLISHED')
    assert established.get('direction') == 'incoming', established
    counts = rh.dialog_counts()
    assert counts['confirmed'] == 1, \
        'the call is up but rehomed holds %s' % counts
    return rh, alice, bob


def hung_up(rh, alice, bob):
    """Both clients see the call closed, and rehomed keeps no dialog."""
    alice.wait_event('CALL_CLOSED')
    bob.wait_event('CALL_CLOSED')
    assert h.wait_until(lambda: rh.active_dialogs() == 0, 5), \
        'dialogs left after the call: %s' % rh.dialog_counts()


@t.test
def caller_hangs_up(ctx):
    rh, alice, bob = call_up(ctx)
    alice.command('hangup')
    hung_up(rh, alice, bob)


@t.test
def callee_hangs_up(ctx):
    rh, alice, bob = call_up(ctx)
    bob.command('hangup')
    hung_up(rh, alice, bob)


@t.test
def hold_resume_then_hang_up(ctx):
    """hold and resume are re-INVITEs with a new offer: the callee must
    get each one (a new remote SDP offer) and the call must stay up."""
    rh, alice, bob = call_up(ctx)
    offers = bob.event_count('CALL_REMOTE_SDP')
    alice.command('hold')
    bob.wait_event('CALL_REMOTE_SDP', offers + 1)
    alice.command('resume')
    bob.wait_event('CALL_REMOTE_SDP', offers + 2)
    assert rh.dialog_counts()['confirmed'] == 1, rh.dialog_counts()
    bob.command('hangup')
    hung_up(rh, alice, bob)


t.main()
