"""rawua.py  Hand-driven SIP user agents on raw sockets, timestamped.

sipp answers and retransmits by its own rules; a test that loses messages
on purpose (never ACKs the first copies of a 200, retransmits a request
20 s late) needs a UA that does nothing by itself. A `Ua` (UDP) sends what
the test tells it and reads what arrives, each message stamped by the
kernel with its arrival time (SO_TIMESTAMP), so a test can read its
socket late and still measure retransmission intervals exactly. Messages
not asked for yet wait in the UA's inbox. A `TcpUa` does the same over
one TCP connection to the engine. Unlike ua.Ua, which answers in its
dialog and keeps one view of it, nothing here answers by itself.
Imported on its own (`from harness import rawua`).

    caller, callee = rawua.Ua(ctx, h.CALLER_IP), rawua.Ua(ctx, h.CALLEE_IP)
    rh = ctx.rehomed(upstream='udp:%s' % callee.addr)
    call = rawua.Call(caller, callee, rh.sip_addr)
    call.send_invite()            # the caller's INVITE
    call.answer()                 # the callee's 180 and 200
    call.ok_received()            # the 200 at the caller
    call.ack()                    # the caller's ACK
"""

import random
import socket
import struct
import time

from .common import MEDIA_IP, free_port, slow
from .sip import SipMsg
from .ua import uri_of

SDP_CALLER = ('v=0\r\no=alice 1000 1000 IN IP4 %s\r\ns=-\r\n'
              'c=IN IP4 %s\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n'
              % (MEDIA_IP, MEDIA_IP))
SDP_CALLEE = SDP_CALLER.replace('alice 1000', 'bob 2000') \
    .replace('6000', '7000')

# Linux's SO_TIMESTAMP (also the SCM type of its ancillary data), which
# Python's socket module does not name: a struct timeval per datagram
SO_TIMESTAMP = getattr(socket, 'SO_TIMESTAMP', 29)


def _rand():
    return '%x' % random.getrandbits(48)


def _hostport(uri):
    """"IP:PORT" of a sip: URI."""
    host = uri.split('@', 1)[-1].split(';', 1)[0].split('>', 1)[0]
    return host if ':' in host else host + ':5060'


class Ua:
    """One UDP socket on ip:<free port>: a SIP endpoint the test drives."""

    transport = 'UDP'

    def __init__(self, ctx, ip):
        self.ip = ip
        self.port = free_port()
        self.addr = '%s:%d' % (ip, self.port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
        self.sock.bind((ip, self.port))
        self.inbox = []        # [(arrival time, SipMsg)] not taken yet
        ctx.peers.append(self)

    def close(self):
        self.sock.close()

    def send(self, text, dst):
        """Send text to "IP:PORT"; returns the time just before."""
        host, _, port = dst.rpartition(':')
        stamp = time.time()
        self.sock.sendto(text.encode(), (host, int(port)))
        return stamp

    def _read(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, anc, _, _ = self.sock.recvmsg(65535, 64)
        except socket.timeout:
            return False
        stamp = time.time()
        for level, kind, raw in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMP:
                sec, usec = struct.unpack('ll', raw[:16])
                stamp = sec + usec / 1e6
        msg = SipMsg(data.decode('latin-1'), 'received', 'UDP')
        msg.time = stamp
        self.inbox.append(msg)
        return True

    def take(self, pred, timeout=5.0):
        """The first message (inbox first) for which pred(msg) is true,
        removed from the inbox; None if none came within timeout."""
        deadline = time.monotonic() + timeout
        while True:
            for i, msg in enumerate(self.inbox):
                if pred(msg):
                    return self.inbox.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._read(left)

    def take_all(self, pred, timeout):
        """Every message matching pred that arrives within timeout (and
        those already waiting), removed from the inbox."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read(deadline - time.monotonic())
        got = [m for m in self.inbox if pred(m)]
        self.inbox = [m for m in self.inbox if not pred(m)]
        return got

    def expect(self, pred, what, timeout=5.0):
        """take() that must succeed within `timeout` times SLOW."""
        timeout = slow(timeout)
        msg = self.take(pred, timeout)
        assert msg is not None, '%s: no %s within %.1fs; inbox %s' % (
            self.addr, what, timeout, self.inbox)
        return msg

    def expect_all(self, pred, what, window):
        """expect() a first message, then take_all() for `window` more
        seconds: every message pred accepts, at least one. (take_all()
        alone would miss a message later than its window on a loaded
        machine.)"""
        return [self.expect(pred, what)] + self.take_all(pred, window)

    def contact(self, user):
        return 'sip:%s@%s' % (user, self.addr)


class TcpUa(Ua):
    """A SIP endpoint on one TCP connection to `engine` ("IP:PORT"): every
    message goes over it, whatever its destination (arrival times are
    those of the reads)."""

    transport = 'TCP'

    def __init__(self, ctx, ip, engine):
        host, _, port = engine.rpartition(':')
        self.ip = ip
        self.port = free_port()
        self.addr = '%s:%d' % (ip, self.port)
        self.sock = socket.create_connection((host, int(port)), 5,
                                             (ip, self.port))
        self.buf = b''
        self.inbox = []
        ctx.peers.append(self)

    def send(self, text, dst):
        stamp = time.time()
        self.sock.sendall(text.encode())
        return stamp

    def _message(self):
        """One whole message off the front of the stream, or None."""
        head, sep, rest = self.buf.partition(b'\r\n\r\n')
        if not sep:
            return None
        msg = SipMsg(head.decode('latin-1') + '\r\n\r\n', 'received',
                       'TCP')
        length = int(msg.header('Content-Length') or 0)
        if len(rest) < length:
            return None
        self.buf = rest[length:]
        return SipMsg((head + sep + rest[:length]).decode('latin-1'),
                        'received', 'TCP')

    def _read(self, timeout):
        msg = self._message()
        if msg is None:
            self.sock.settimeout(max(timeout, 0.001))
            try:
                data = self.sock.recv(65535)
            except socket.timeout:
                return False
            self.buf += data
            msg = self._message()
            if msg is None:
                return bool(data)
        msg.time = time.time()
        self.inbox.append(msg)
        return True

    def contact(self, user):
        return 'sip:%s@%s;transport=tcp' % (user, self.addr)


def via_addr(msg):
    """"IP:PORT" of msg's top Via: where its responses go."""
    return _hostport(msg.header('Via').split()[1])


def is_request(method):
    return lambda m: m.is_request and m.method == method


def is_response(code, method='INVITE', cseq=None):
    return lambda m: (not m.is_request and m.status == code and
                      m.method == method and
                      (cseq is None or m.cseq[0] == cseq))


def response(req, code, reason, to_tag=None, contact=None, body='',
             headers=()):
    """A response to req: its Vias, From, To (with to_tag if it has none),
    Call-ID and CSeq; our Contact, more header lines and an SDP body if
    given."""
    to = req.header('To')
    if to_tag and ';tag=' not in to:
        to += ';tag=' + to_tag
    lines = ['SIP/2.0 %d %s' % (code, reason)]
    lines += ['Via: ' + v for v in req.header_all('Via')]
    lines += ['From: ' + req.header('From'), 'To: ' + to,
              'Call-ID: ' + req.call_id, 'CSeq: ' + req.header('CSeq')]
    if contact:
        lines.append('Contact: <%s>' % contact)
    lines += list(headers)
    if body:
        lines.append('Content-Type: application/sdp')
    lines.append('Content-Length: %d' % len(body.encode()))
    return '\r\n'.join(lines) + '\r\n\r\n' + body


class Leg:
    """One endpoint's view of the dialog: what it needs to send requests."""

    def __init__(self, ua, call_id, local, remote, target, cseq):
        self.ua = ua
        self.call_id = call_id
        self.local = local           # our From value, tag included
        self.remote = remote         # their To value, tag included
        self.target = target         # their Contact URI
        self.cseq = cseq             # our last CSeq

    def request(self, method, cseq=None, body='', branch=None, headers=()):
        """A request in this dialog (CSeq: the next one, or cseq), with
        more header lines if given."""
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        lines = ['%s %s SIP/2.0' % (method, self.target),
                 'Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport' % (
                     self.ua.transport, self.ua.addr, branch or _rand()),
                 'Max-Forwards: 70',
                 'From: ' + self.local, 'To: ' + self.remote,
                 'Call-ID: ' + self.call_id,
                 'CSeq: %d %s' % (cseq, method),
                 'Contact: <%s>' % self.ua.contact('ua')]
        lines += list(headers)
        if body:
            lines.append('Content-Type: application/sdp')
        lines.append('Content-Length: %d' % len(body.encode()))
        return '\r\n'.join(lines) + '\r\n\r\n' + body

    def send(self, text):
        return self.ua.send(text, _hostport(self.target))


class Call:
    """A call from `caller` to `callee` (Ua) through the engine at
    `engine` ("IP:PORT"): the steps tests usually need, one by one."""

    def __init__(self, caller, callee, engine):
        self.caller_ua = caller
        self.callee_ua = callee
        self.engine = engine
        self.caller = self.callee = None   # Leg of each side, once up
        self.invite_out = None             # the caller's INVITE, as sent
        self.invite_in = None              # the INVITE the callee got
        self.ok = None                     # the callee's 200, as sent

    def send_invite(self, headers=()):
        """The caller's INVITE (more header lines if given); returns the
        time it left."""
        ua = self.caller_ua
        call_id = '%s@%s' % (_rand(), ua.ip)
        leg = Leg(ua, call_id, '<sip:alice@example.com>;tag=' + _rand(),
                  '<sip:bob@example.com>', 'sip:bob@%s' % self.engine, 0)
        self.caller = leg
        self.invite_out = leg.request('INVITE', body=SDP_CALLER,
                                      headers=headers)
        return leg.send(self.invite_out)

    def ack_failure(self, resp):
        """The caller's ACK of a failure response to its INVITE: same
        branch and Request-URI, the response's To (RFC 3261 17.1.1.3)."""
        head = self.invite_out.split('\r\n\r\n', 1)[0].split('\r\n')
        lines = ['ACK ' + head[0].split(' ', 1)[1]]
        for line in head[1:]:
            name = line.split(':', 1)[0].lower()
            if name == 'to':
                line = 'To: ' + resp.header('To')
            elif name == 'cseq':
                line = 'CSeq: %d ACK' % resp.cseq[0]
            elif name in ('content-type', 'content-length', 'contact'):
                continue
            lines.append(line)
        lines.append('Content-Length: 0')
        self.caller_ua.send('\r\n'.join(lines) + '\r\n\r\n', self.engine)

    def answer(self, codes=(180, 200), headers=()):
        """The callee takes the INVITE and answers with codes, in order
        (the 200, with more header lines if given, is kept as self.ok);
        returns the INVITE."""
        ua = self.callee_ua
        inv = ua.expect(is_request('INVITE'), 'INVITE')
        self.invite_in = inv
        tag = _rand()
        contact = ua.contact('bob')
        for code in codes:
            reason = {100: 'Trying', 180: 'Ringing', 200: 'OK'}[code]
            text = response(inv, code, reason, tag, contact,
                            SDP_CALLEE if code == 200 else '',
                            headers if code == 200 else ())
            ua.send(text, via_addr(inv))
            if code == 200:
                self.ok = text
        to = inv.header('To') + ';tag=' + tag
        self.callee = Leg(ua, inv.call_id, to, inv.header('From'),
                          uri_of(inv.header('Contact')), 0)
        return inv

    def ok_received(self, timeout=5.0):
        """The caller takes the 200 to its INVITE and learns the dialog."""
        ok = self.caller_ua.expect(is_response(200, cseq=self.caller.cseq),
                                   '200 to the INVITE', timeout)
        self.learn(ok)
        return ok

    def learn(self, ok):
        """The caller's dialog, from the 200 to its INVITE."""
        self.caller.remote = ok.header('To')
        self.caller.target = uri_of(ok.header('Contact'))

    def ack(self, cseq=None):
        """The caller ACKs the 2xx of its INVITE (or of CSeq cseq)."""
        leg = self.caller
        return leg.send(leg.request('ACK', cseq or leg.cseq))

    def setup(self, caller_hdrs=(), callee_hdrs=()):
        """INVITE, 180/200 and ACK (more header lines in the INVITE and
        the 200 if given): the call is up; returns the ACK the callee
        got."""
        self.send_invite(caller_hdrs)
        self.answer(headers=callee_hdrs)
        self.ok_received()
        self.ack()
        return self.callee_ua.expect(is_request('ACK'), 'ACK')
