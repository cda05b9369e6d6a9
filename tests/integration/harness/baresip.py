"""baresip.py  baresip (Debian's 1.0.0) as a real endpoint, over UDP, TCP
or TLS.

Each client runs from its own config directory: g711 for PCMU, aubridge
as a null audio device, ctrl_tcp to drive it with netstring-framed JSON
commands ("dial", "hangup") and to read its events (CALL_ESTABLISHED,
CALL_CLOSED, CALL_REMOTE_SDP, ...). baresip listens for UDP and TCP on its port and for
TLS on the port after it. With transport 'tcp' or 'tls' its account
carries ;transport=, so that what it dials and its Contact use it; for
TLS it presents `cert` (a PEM with key) and is given `ca`. Imported on
its own (`from harness.baresip import Baresip`).
"""
import json
import os
import socket
import time

from .common import TestFailure, free_port, wait_until
from .procs import Proc

PARAM = {'udp': '', 'tcp': ';transport=tcp', 'tls': ';transport=tls'}


class Baresip(Proc):
    """One baresip, auto-answering; outbound: "IP:PORT" of an outbound
    proxy (reached over the same transport), or None."""

    def __init__(self, ctx, name, ip, transport='udp', outbound=None,
                 cert=None, ca=None):
        self.port = free_port(2)   # TLS on port + 1
        self.ctrl_port = free_port()
        rtp = free_port(10)
        self.ip = ip
        self.transport = transport
        self.sip_port = self.port + 1 if transport == 'tls' else self.port
        self.aor = 'sip:%s@%s:%d%s' % (name, ip, self.sip_port,
                                       PARAM[transport])
        conf_dir = ctx.path(name)
        os.makedirs(conf_dir)
        lines = ['poll_method epoll', 'sip_listen %s:%d' % (ip, self.port),
                 'net_interface %s' % ip,
                 'rtp_ports %d-%d' % (rtp, rtp + 9),
                 'call_local_timeout 30',
                 'audio_player aubridge,nil', 'audio_source aubridge,nil',
                 'audio_alert aubridge,nil',
                 'module_path /usr/lib/baresip/modules',
                 'module g711.so', 'module aubridge.so',
                 'module_tmp account.so', 'module_app menu.so',
                 'module_app ctrl_tcp.so',
                 'ctrl_tcp_listen %s:%d' % (ip, self.ctrl_port)]
        if cert:
            lines.append('sip_certificate %s' % cert)
        if ca:
            lines.append('sip_cafile %s' % ca)
        with open(os.path.join(conf_dir, 'config'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
        account = '<%s>;regint=0;answermode=auto;audio_codecs=pcmu' % (
            self.aor)
        if outbound:
            account += ';outbound="sip:%s%s"' % (outbound,
                                                 PARAM[transport])
        with open(os.path.join(conf_dir, 'accounts'), 'w') as f:
            f.write(account + '\n')
        super().__init__(name, ['baresip', '-f', conf_dir],
                         ctx.path(name + '.log'))
        ctx.procs.append(self)
        self.sock = None
        self.buf = b''
        self.events = []
        self.responses = {}
        self.tokens = 0

    def start(self, timeout=5.0):
        super().start()
        self.sock = wait_until(self._connect, timeout)
        if not self.sock:
            raise TestFailure('%s: no ctrl_tcp:\n%s' % (self.name,
                                                        self.log_tail()))
        return self

    def _connect(self):
        if not self.alive():
            return None
        try:
            return socket.create_connection((self.ip, self.ctrl_port), 1)
        except OSError:
            return None

    def stop(self, timeout=5.0):
        if self.sock:
            self.sock.close()
        return super().stop(timeout)

    def cmd(self, command, params=None):
        """Send one command; returns its token (see command())."""
        self.tokens += 1
        token = '%s-%d' % (self.name, self.tokens)
        msg = {'command': command, 'token': token}
        if params is not None:
            msg['params'] = params
        data = json.dumps(msg).encode()
        self.sock.sendall(b'%d:%s,' % (len(data), data))
        return token

    def command(self, command, params=None, timeout=5.0):
        """Run one command and wait for its response, asserted ok."""
        token = self.cmd(command, params)
        resp = wait_until(lambda: self._read() or
                          self.responses.get(token), timeout)
        if not resp or not resp.get('ok'):
            raise TestFailure('%s: %s: %s' % (self.name, command, resp))
        return resp

    def _read(self, wait=0.1):
        """Take in what came on ctrl_tcp: netstrings "LEN:JSON," each."""
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, BlockingIOError):
            return
        if not data:
            raise TestFailure('%s closed ctrl_tcp:\n%s' % (
                self.name, self.log_tail()))
        self.buf += data
        while b':' in self.buf:
            n, _, rest = self.buf.partition(b':')
            if len(rest) < int(n) + 1:
                break
            msg = json.loads(rest[:int(n)])
            if msg.get('event'):
                self.events.append(msg)
            elif msg.get('response'):
                self.responses[msg.get('token')] = msg
            self.buf = rest[int(n) + 1:]

    def wait_event(self, kind, timeout=10.0, count=1):
        """The count-th event of that type (events are kept, so order
        does not matter), or None."""
        def find():
            self._read()
            found = [e for e in self.events if e.get('type') == kind]
            return found[count - 1] if len(found) >= count else None
        return wait_until(find, timeout)

    def event_count(self, kind):
        self._read(0)
        return len([e for e in self.events if e.get('type') == kind])

    def kinds(self):
        return [e.get('type') for e in self.events]


def call_up(caller, callee, dial):
    """caller dials `dial`; both must see the call established."""
    caller.cmd('dial', dial)
    for ua in (caller, callee):
        if not ua.wait_event('CALL_ESTABLISHED'):
            raise TestFailure('%s: no CALL_ESTABLISHED, events %s\n%s' % (
                ua.name, ua.kinds(), ua.log_tail()))


def hang_up(hanger, other, timeout=10.0):
    """hanger hangs up; the other side must see the call closed."""
    time.sleep(0.2)
    hanger.cmd('hangup')
    if not other.wait_event('CALL_CLOSED', timeout):
        raise TestFailure('%s never saw the call end: %s\n%s' % (
            other.name, other.kinds(), other.log_tail()))
