"""ua.py  A SIP endpoint on a raw UDP socket, for tests that need to play
one side of a call by hand (and then misbehave).

A Ua keeps its view of the dialog (Call-ID, tags, the remote target
rehomed gave it) and builds requests in it, any identifier of which a
test can override; it answers the requests an endpoint must answer in its
dialog (INVITE with its SDP, BYE, INFO) with 200 while it listens, and
follows the Contact of an INVITE as a target refresh. call() sets a call
up between two of them through rehomed. Imported on its own (`from
harness.ua import Ua, call`).
"""
import random
import re
import time

from .common import MEDIA_IP, slow
from .sip import SipMsg

SDP = ('v=0\r\no=- 1 1 IN IP4 {ip}\r\ns={name}\r\nc=IN IP4 {ip}\r\n'
       't=0 0\r\nm=audio 4000 RTP/AVP 0\r\n')


def tag_of(value):
    m = re.search(r';\s*tag=([^;>\s]+)', value or '')
    return m.group(1) if m else None


def without_tag(value):
    return re.sub(r';\s*tag=[^;>\s]+', '', value)


def uri_of(value):
    m = re.search(r'<([^>]+)>', value or '')
    return m.group(1) if m else (value or '').split(';')[0].strip()


def user_of(uri):
    return uri.partition(':')[2].partition('@')[0]


def hostport_of(uri):
    return re.search(r'@([^;>]+)', uri).group(1)


class Ua:
    """One endpoint on a raw UDP socket: its view of the dialog (Call-ID,
    tags, the target rehomed gave it) and every message it received."""

    def __init__(self, ctx, ip, name):
        self.peer = ctx.udp(ip)
        self.ip = ip
        self.name = name
        self.contact = 'sip:%s@%s:%d' % (name, ip, self.peer.port)
        self.sdp = SDP.format(ip=MEDIA_IP, name=name)
        self.tag = '%x' % random.getrandbits(48)
        self.call_id = self.local = self.remote = None
        self.remote_tag = self.target = None
        self.cseq = 0
        self.invite_cseq = 0
        self.received = []     # every message, in order
        self.pending = []      # received, not taken by wait() yet

    def recv(self, timeout):
        """Read what arrives within `timeout` seconds; answer the requests
        a UA must answer (INVITE, BYE, INFO) with 200, following a new
        Contact of an INVITE as a target refresh."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.peer.sock.settimeout(left)
            try:
                data, src = self.peer.sock.recvfrom(65535)
            except OSError:
                return
            msg = SipMsg(data.decode('latin-1'), 'received', 'UDP')
            msg.src = '%s:%d' % src
            self.received.append(msg)
            self.pending.append(msg)
            if msg.is_request and self.call_id and \
                    msg.call_id == self.call_id and \
                    msg.method in ('INVITE', 'BYE', 'INFO'):
                if msg.method == 'INVITE' and msg.header('Contact'):
                    self.target = uri_of(msg.header('Contact'))
                self.answer(msg, body=self.sdp if msg.method == 'INVITE'
                            else '')

    def wait(self, pred, timeout=3.0):
        """The first pending message pred() accepts (taken off the pending
        list), None if none came within `timeout` times SLOW."""
        deadline = time.monotonic() + slow(timeout)
        while True:
            for m in self.pending:
                if pred(m):
                    self.pending.remove(m)
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.recv(min(left, 0.1))

    def requests_received(self, timeout=0.5):
        """Requests pending after `timeout` more seconds of listening."""
        self.recv(timeout)
        return [m for m in self.pending if m.is_request]

    def request(self, method, ruri=None, call_id=None, from_tag=None,
                to_tag=None, body=''):
        """A request in our dialog; every identifier can be overridden."""
        if method == 'ACK':
            num = self.invite_cseq
        else:
            self.cseq += 1
            num = self.cseq
            if method == 'INVITE':
                self.invite_cseq = num
        to_tag = to_tag or self.remote_tag
        lines = ['%s %s SIP/2.0' % (method, ruri or self.target),
                 'Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%x;rport' % (
                     self.ip, self.peer.port, random.getrandbits(48)),
                 'Max-Forwards: 70',
                 'From: %s;tag=%s' % (self.local, from_tag or self.tag),
                 'To: %s%s' % (self.remote,
                               ';tag=' + to_tag if to_tag else ''),
                 'Call-ID: %s' % (call_id or self.call_id),
                 'CSeq: %d %s' % (num, method),
                 'Contact: <%s>' % self.contact]
        return self._finish(lines, body)

    def answer(self, req, status=200, reason='OK', body=''):
        to = req.header('To')
        if not tag_of(to):
            to += ';tag=' + self.tag
        lines = ['SIP/2.0 %d %s' % (status, reason)]
        lines += ['Via: %s' % v for v in req.header_all('Via')]
        lines += ['From: %s' % req.header('From'), 'To: %s' % to,
                  'Call-ID: %s' % req.call_id,
                  'CSeq: %s' % req.header('CSeq'),
                  'Contact: <%s>' % self.contact]
        self.send(self._finish(lines, body), req.src)

    @staticmethod
    def _finish(lines, body):
        if body:
            lines.append('Content-Type: application/sdp')
        lines.append('Content-Length: %d' % len(body.encode()))
        return '\r\n'.join(lines) + '\r\n\r\n' + body

    def send(self, data, dst=None):
        self.peer.send(data, dst or hostport_of(self.target))

    def final(self, req, timeout=2.0):
        """The final response to a request we sent, None if none came."""
        cseq = re.search(r'\r\nCSeq: ([^\r]+)', req).group(1)
        return self.wait(lambda m: not m.is_request and m.status >= 200 and
                         m.header('CSeq') == cseq, timeout)

    def learn_invite(self, inv):
        """The callee's view of the dialog, from the INVITE it got."""
        self.call_id = inv.call_id
        self.local = inv.header('To')
        self.remote = without_tag(inv.header('From'))
        self.remote_tag = tag_of(inv.header('From'))
        self.target = uri_of(inv.header('Contact'))


def call(rh_addr, caller, callee, direct=False):
    """Set up a call caller -> rehomed at rh_addr -> callee, up to the
    callee's ACK; both Uas know their dialog afterwards. direct: the
    Request-URI names the callee's own address (rehomed without an
    upstream), else rehomed's (its upstream is the callee)."""
    caller.call_id = '%x@%s' % (random.getrandbits(48), caller.ip)
    caller.local = '<sip:%s@example.com>' % caller.name
    caller.remote = '<sip:%s@example.com>' % callee.name
    host = '%s:%d' % (callee.ip, callee.peer.port) if direct else rh_addr
    caller.send(caller.request('INVITE', 'sip:%s@%s' % (callee.name, host),
                               body=caller.sdp), rh_addr)

    inv = callee.wait(lambda m: m.is_request and m.method == 'INVITE')
    assert inv, 'the INVITE did not reach the callee'
    callee.learn_invite(inv)
    callee.answer(inv, body=callee.sdp)

    ok = caller.wait(lambda m: m.status == 200)
    assert ok, 'no 200 for the INVITE'
    caller.remote_tag = tag_of(ok.header('To'))
    caller.target = uri_of(ok.header('Contact'))
    caller.send(caller.request('ACK'))
    assert callee.wait(lambda m: m.is_request and m.method == 'ACK'), \
        'the ACK did not reach the callee'


def hang_up(caller, callee):
    """The caller's BYE reaches the callee, and its 200 comes back."""
    req = caller.request('BYE')
    caller.send(req)
    assert callee.wait(lambda m: m.is_request and m.method == 'BYE'), \
        'the BYE did not reach the callee'
    ok = caller.final(req)
    assert ok and ok.status == 200, 'BYE: %s' % (ok and ok.status)
