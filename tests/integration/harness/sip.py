"""sip.py  SIP messages as the tests see them, and a raw-socket SIP peer.

SipMsg parses one message of a sipp trace or of a socket just enough to
assert on it (start line, headers in order with compact forms, body);
UdpPeer sends hand-made requests, well-formed or not, where sipp cannot.
"""

import datetime
import random
import re
import socket
import time

from .common import CALLER_IP, free_port

COMPACT = {'i': 'call-id', 'm': 'contact', 'e': 'content-encoding',
           'l': 'content-length', 'c': 'content-type', 'f': 'from',
           's': 'subject', 'k': 'supported', 't': 'to', 'v': 'via'}


class SipMsg:
    """One SIP message: direction ('sent'/'received', seen from its
    sipp or socket), start line, headers [(name, value)] in order, body."""

    def __init__(self, raw, direction=None, transport=None):
        self.raw = raw
        self.direction = direction
        self.transport = transport
        self.time = None    # set by parse_trace
        sep = '\r\n\r\n' if '\r\n\r\n' in raw else '\n\n'
        head, _, body = raw.partition(sep)
        lines = head.replace('\r\n', '\n').split('\n')
        self.start_line = lines[0].strip()
        self.headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(':')
            if colon:
                self.headers.append((name.strip(), value.strip()))
        length = self.header('Content-Length')
        self.body = body[:int(length)] if length and length.isdigit() \
            else body

    @property
    def is_request(self):
        return not self.start_line.startswith('SIP/')

    @property
    def method(self):
        """Request method, or the CSeq method of a response."""
        if self.is_request:
            return self.start_line.split(' ', 1)[0]
        return self.cseq[1]

    @property
    def status(self):
        """Response code (int); None for a request."""
        return None if self.is_request else int(self.start_line.split()[1])

    @property
    def call_id(self):
        return self.header('Call-ID')

    @property
    def cseq(self):
        """(number, method)"""
        num, _, method = (self.header('CSeq') or '0 ?').partition(' ')
        return int(num), method.strip()

    def header_all(self, name):
        """Every value of that header (compact forms included), in order."""
        name = name.lower()
        return [v for n, v in self.headers
                if COMPACT.get(n.lower(), n.lower()) == name]

    def header(self, name):
        values = self.header_all(name)
        return values[0] if values else None

    def __repr__(self):
        return '<%s %s %s>' % (self.direction, self.start_line,
                               self.call_id)


# "UDP message sent (480 bytes):" / "TCP message received [255] bytes :"
_TRACE_HEAD = re.compile(r'^(\w+) message (sent|received) [\[(]\d+')


# "----------------------------------------------- 2024-05-01 10:00:00.123"
_TRACE_SEP = re.compile(r'^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n',
                        re.M)


def parse_trace(text):
    """sipp -trace_msg file -> [SipMsg], each with .time (Unix seconds,
    float) of its trace entry; other trace blocks are skipped."""
    msgs = []
    parts = _TRACE_SEP.split(text)
    for stamp, block in zip(parts[1::2], parts[2::2]):
        first, _, rest = block.partition('\n')
        m = _TRACE_HEAD.match(first)
        if m:
            msg = SipMsg(rest.lstrip('\r\n'), m.group(2), m.group(1))
            msg.time = datetime.datetime.strptime(
                stamp, '%Y-%m-%d %H:%M:%S.%f').timestamp()
            msgs.append(msg)
    return msgs


def headers_containing(msgs, needles):
    """[(start line, header name, value)] of every header of every message
    whose value contains one of the needle strings."""
    return [(m.start_line, n, v) for m in msgs for n, v in m.headers
            if any(x in v for x in needles)]


class UdpPeer:
    """A raw UDP socket on ip:<free port>, for hand-made SIP messages."""

    def __init__(self, ip=CALLER_IP):
        self.ip = ip
        self.port = free_port()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, self.port))

    def close(self):
        self.sock.close()

    def send(self, data, dst):
        """data: str or bytes; dst: "IP:PORT"."""
        host, _, port = dst.rpartition(':')
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendto(data, (host, int(port)))

    def recv(self, timeout=1.0, until_final=True):
        """Messages received within `timeout`; stops early after a final
        response when until_final is true."""
        msgs = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return msgs
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except socket.timeout:
                return msgs
            msg = SipMsg(data.decode('latin-1'), 'received', 'UDP')
            msgs.append(msg)
            if until_final and msg.status and msg.status >= 200:
                return msgs

    def request(self, method, ruri, call_id=None, cseq=1,
                max_forwards=70, headers=(), body=''):
        """A well-formed request from this peer, as a str; `headers` are
        extra "Name: value" lines."""
        call_id = call_id or '%x@%s' % (random.getrandbits(48), self.ip)
        tag = '%x' % random.getrandbits(32)
        branch = 'z9hG4bK%x' % random.getrandbits(48)
        lines = ['%s %s SIP/2.0' % (method, ruri),
                 'Via: SIP/2.0/UDP %s:%d;branch=%s;rport' % (
                     self.ip, self.port, branch),
                 'Max-Forwards: %d' % max_forwards,
                 'From: <sip:alice@example.com>;tag=%s' % tag,
                 'To: <sip:bob@example.com>',
                 'Call-ID: %s' % call_id,
                 'CSeq: %d %s' % (cseq, method),
                 'Contact: <sip:alice@%s:%d>' % (self.ip, self.port)]
        lines += list(headers)
        lines.append('Content-Length: %d' % len(body.encode()))
        return '\r\n'.join(lines) + '\r\n\r\n' + body
