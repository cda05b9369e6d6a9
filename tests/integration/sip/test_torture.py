"""test_torture.py  RFC 4475: the 49 torture messages against a real rehomed.

Each message of tests/torture/ is sent as it is but for what routes it:
the Request-URI host:port becomes rehomed's, the top Via sent-by the
sending socket's. It goes over TCP when its top Via says TCP or TLS, else
over UDP, each from a fresh socket. A raw UDP socket is the callee
(rehomed's upstream): it answers every request relayed to it with 486 and
keeps it. What comes back, what reached the callee, and whether libre's
parser refused the message (rehomed logs "msg decode err" for a datagram;
over TCP it closes the connection) make the outcome, checked against what
RFC 4475 says an element does with that message. rehomed is the endpoint
toward each leg: an INVITE is relayed, OPTIONS it answers itself, methods
it does not serve outside a dialog it rejects (405, 501 if unknown).

The five responses are sent twice: as they are (no transaction wants
them: nothing may come out anywhere), and as the callee's answer to a
relayed INVITE, with the headers that match them to it (Via, From, To,
Call-ID, CSeq) taken from that INVITE, but the part under test kept (the
status line of bigcode, the CSeq number of scalarlg): an invalid one must
not reach the caller, a valid one must, with nothing of the callee's Via
(bcast's broadcast address).

The test prints "N of 49 handled as RFC 4475 says" and fails unless all
are. Nine of them libre 1.1.0's parser refuses, and core/sip/sipmend.c
reads them a second time for the engine (badvers: 505; longreq, inv2543:
RFC 2543 requests, relayed; unksm2: a From of an unknown scheme, 405;
lwsruri, lwsstart, trws, badinv01, ltgtruri: 400). baddn, whose header
section never ends, stays refused (rehomed logs "msg decode err" and
drops it), which is what an element can do with an invalid message it
cannot read (tests/torture/README.md).
"""
import os
import re
import select
import socket
import time

import harness as h

t = h.Test(__file__)

TORTURE = os.path.join(h.SRC, 'tests', 'torture')

# Waiting for outcomes: a final answer (within WINDOW: on a loaded machine
# or under ASan the engine may answer late), then this long for stragglers
WINDOW = h.slow(1.0)
GRACE = 0.3

# ------------------------------------------------------------- rewriting

def _ruri_host(line, engine):
    """The request line with the host:port of a sip/sips R-URI replaced."""
    m = re.match(rb'([^ ]+ +<?)(sips?:)([^ >]*)', line, re.I)
    if not m:
        return line           # a response, or another scheme: no host
    uri = m.group(3)
    at = uri.find(b'@')
    start = at + 1 if at >= 0 else 0
    end = re.search(rb'[;?>]|$', uri[start:]).start() + start
    uri = uri[:start] + engine.encode() + uri[end:]
    return line[:m.start(3)] + uri + line[m.end(3):]


_VIA = re.compile(rb'^(?:v|via)[ \t]*:(\s*SIP\s*/\s*\d+\.\d+\s*/\s*)'
                  rb'([A-Za-z]+)(\s+)([^;,\s]+)', re.I | re.M)


def top_via(data):
    """(match of the first Via header) within the header section."""
    head = data.split(b'\r\n\r\n', 1)[0]
    return _VIA.search(head)


def routed(data, engine, sender):
    """data with the R-URI host:port -> engine and the top Via sent-by ->
    sender ("ip:port"); every other byte kept."""
    line, sep, rest = data.partition(b'\r\n')
    data = _ruri_host(line, engine) + sep + rest
    m = top_via(data)
    if m:
        data = data[:m.start(4)] + sender.encode() + data[m.end(4):]
    return data


def over_tcp(data):
    m = top_via(data)
    return bool(m) and m.group(2).upper() in (b'TCP', b'TLS')


# ---------------------------------------------------------------- sockets

def _parse(raw):
    return h.SipMsg(raw.decode('latin-1'), 'received')


class TcpPeer:
    """A TCP connection from CALLER_IP to rehomed, read as SIP messages."""

    def __init__(self, engine):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((h.CALLER_IP, 0))
        self.ip, self.port = self.sock.getsockname()
        host, _, port = engine.rpartition(':')
        self.sock.connect((host, int(port)))
        self.buf = b''
        self.closed = False

    def send(self, data):
        self.sock.sendall(data)

    def read(self):
        """Messages complete in what has arrived (called when readable)."""
        try:
            data = self.sock.recv(65535)
        except ConnectionResetError:
            data = b''
        if not data:
            self.closed = True
        self.buf += data
        msgs = []
        while b'\r\n\r\n' in self.buf:
            head, _, rest = self.buf.partition(b'\r\n\r\n')
            m = re.search(rb'^(?:content-length|l)[ \t]*:[ \t]*(\d+)',
                          head, re.I | re.M)
            length = int(m.group(1)) if m else 0
            if len(rest) < length:
                break
            msgs.append(_parse(head + b'\r\n\r\n' + rest[:length]))
            self.buf = rest[length:]
        return msgs

    def close(self):
        self.sock.close()


class UdpSender:
    def __init__(self, ctx):
        self.peer = ctx.udp()
        self.sock = self.peer.sock
        self.ip, self.port = self.peer.ip, self.peer.port
        self.closed = False

    def send(self, data, engine):
        self.peer.send(data, engine)

    def read(self):
        return [_parse(self.sock.recv(65535))]


def answer(req, status, headers, body=b''):
    """A response to req: the status line, req's Via, From, To (tagged)
    and Call-ID, then `headers` (CSeq among them) and the body."""
    to = req.header('To')
    if ';tag=' not in to.replace(' ', ''):
        to += ';tag=callee1'
    lines = [status] + [('Via: ' + v).encode()
                        for v in req.header_all('Via')]
    lines += [('From: %s\r\nTo: %s\r\nCall-ID: %s' % (
        req.header('From'), to, req.call_id)).encode()] + headers
    return b'\r\n'.join(lines) + b'\r\n\r\n' + body


def busy(req):
    return answer(req, b'SIP/2.0 486 Busy Here',
                  [('CSeq: ' + req.header('CSeq')).encode(),
                   b'Content-Length: 0'])


_MATCHED = {b'via', b'v', b'from', b'f', b'to', b't', b'call-id', b'i'}


def as_answer(raw, req):
    """The torture response raw as the answer to req: req's Via, From,
    To and Call-ID instead of its own, req's method in its CSeq (whose
    number is kept: scalarlg's is under test); the status line, the other
    headers and the body kept (none of the five has folded lines)."""
    head, _, body = raw.partition(b'\r\n\r\n')
    status, *lines = head.split(b'\r\n')
    kept = []
    for line in lines:
        name, _, value = line.partition(b':')
        name = name.strip().lower()
        if name == b'cseq':
            kept.append(b'CSeq: %s %s' % (value.split()[0],
                                          req.method.encode()))
        elif name not in _MATCHED:
            kept.append(line)
    return answer(req, status, kept, body)


# ---------------------------------------------------------------- outcome

class Outcome:
    """What one message led to."""

    def __init__(self):
        self.answers = []     # messages back to the sender
        self.relayed = []     # requests that reached the callee
        self.refused = False  # libre's parser refused it
        self.closed = False   # rehomed closed the TCP connection

    @property
    def final(self):
        finals = [m for m in self.answers if m.status and m.status >= 200]
        return finals[0] if finals else None

    def __str__(self):
        parts = ['answered %s' % ([m.start_line for m in self.answers]
                                  or 'nothing'),
                 'relayed %s' % ([m.start_line for m in self.relayed]
                                 or 'nothing')]
        if self.refused:
            parts.append('refused by libre')
        if self.closed:
            parts.append('connection closed')
        return ', '.join(parts)


class Bench:
    """rehomed with a raw callee as its upstream, and the log cursor."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.callee = ctx.udp(h.CALLEE_IP)
        self.rh = ctx.rehomed(upstream='udp:%s:%d' % (self.callee.ip,
                                                      self.callee.port))
        self.engine = self.rh.sip_addr
        self.respond = busy   # the callee's answer to what reaches it

    def _callee_read(self, out):
        req = _parse(self.callee.sock.recv(65535))
        if not req.is_request:
            return
        if req.method == 'ACK':
            return
        out.relayed.append(req)
        self.callee.send(self.respond(req), self.engine)

    def exchange(self, data, tcp=False, window=WINDOW):
        """Send one message (routed) and collect its Outcome."""
        out = Outcome()
        log_at = len(self.rh.log())
        sender = TcpPeer(self.engine) if tcp else UdpSender(self.ctx)
        data = routed(data, self.engine, '%s:%d' % (sender.ip, sender.port))
        if tcp:
            sender.send(data)
        else:
            sender.send(data, self.engine)
        deadline = time.monotonic() + window
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            ready, _, _ = select.select(
                [sender.sock, self.callee.sock], [], [], deadline - now)
            if self.callee.sock in ready:
                self._callee_read(out)
            if sender.sock in ready and not sender.closed:
                got = sender.read()
                out.answers += got
                if sender.closed:
                    out.closed = True
                    deadline = min(deadline, time.monotonic() + GRACE)
                if any(m.status and m.status >= 200 for m in got):
                    deadline = min(deadline, time.monotonic() + GRACE)
        if tcp:
            sender.close()
        out.refused = 'decode err' in self.rh.log()[log_at:] or (
            out.closed and not out.answers)
        return out


# ----------------------------------------------------------- expectations
#
# Each returns (ok, what RFC 4475 asks) for an Outcome.

def _nothing_relayed(out):
    return not out.relayed


def processed(*codes):
    """A valid request the engine serves itself: parsed, answered with
    one of codes (what it answers that method with), not relayed."""
    def check(out):
        ok = (not out.refused and out.final is not None and
              out.final.status in codes and _nothing_relayed(out))
        return ok, 'parsed and processed: answered %s' % '/'.join(
            map(str, codes))
    return check


def relayed(extra=None, why='parsed and relayed to the callee'):
    """A valid request for the callee: relayed once, its answer back."""
    def check(out):
        ok = (not out.refused and len({r.header('Via') for r in
                                       out.relayed}) == 1 and
              out.final is not None and out.final.status == 486)
        if ok and extra:
            ok = extra(out.relayed[0])
        return ok, why
    return check


def rejected(*codes, unanswerable=False, also=None, answer=None):
    """An invalid request: answered with one of codes and never relayed.
    unanswerable: libre's parser refuses it, and with no hook to answer
    from the bytes, dropping it is all an element on libre can do.
    also: another outcome the RFC accepts (a liberal element's, a
    proxy's). answer: what else the answer must show."""
    def check(out):
        ok = (out.final is not None and out.final.status in codes and
              not out.relayed and (not answer or answer(out.final)))
        if not ok and unanswerable:
            ok = out.refused and not out.final and not out.relayed
        want = 'rejected: %s%s%s' % (
            '/'.join(map(str, codes)),
            ' (%s)' % answer.__doc__ if answer else '',
            ' (or dropped: unparsable, no hook to answer)' if unanswerable
            else '')
        if also:
            alt_ok, alt_want = also(out)
            ok = ok or alt_ok
            want += ' or ' + alt_want
        return ok, want
    return check


def _esc01(req):
    """The escaped user part is kept, Max-Forwards 87 comes out as 70"""
    return (req.start_line.startswith('INVITE sip:sips%3Auser%40'
                                      'example.com@') and
            req.header('Max-Forwards') == '70')


def _unsupported(resp):
    """Unsupported: the Proxy-Require option tags"""
    tags = (resp.header('Unsupported') or '').replace(' ', '').split(',')
    return tags == ['noProxiesSupportThis', 'norDoAnyProxiesSupportThis']


def _no_uri_headers(req):
    return '?' not in req.start_line and req.header('Route') is None


CASES = [
    # 3.1.1 valid messages
    ('wsinv', '3.1.1.1', processed(481)),   # To tag: in-dialog, no dialog
    ('intmeth', '3.1.1.2', processed(501)),
    ('esc01', '3.1.1.3', relayed(_esc01, 'relayed, R-URI still escaped, '
                                 'Max-Forwards 87 capped to 70')),
    ('escnull', '3.1.1.4', processed(405)),
    ('esc02', '3.1.1.5', processed(501)),
    ('lwsdisp', '3.1.1.6', processed(200)),
    ('longreq', '3.1.1.7', relayed()),
    ('dblreq', '3.1.1.8', processed(405)),  # and the INVITE octets ignored
    ('semiuri', '3.1.1.9', processed(200)),
    ('transports', '3.1.1.10', processed(200)),
    ('mpart01', '3.1.1.11', processed(405)),
    ('unreason', '3.1.1.12', None),
    ('noreason', '3.1.1.13', None),
    # 3.1.2 invalid messages
    ('badinv01', '3.1.2.1', rejected(400)),
    ('clerr', '3.1.2.2', rejected(400)),
    ('ncl', '3.1.2.3', rejected(400)),
    ('scalar02', '3.1.2.4', rejected(400)),
    ('scalarlg', '3.1.2.5', None),
    ('quotbal', '3.1.2.6', rejected(400)),
    ('ltgtruri', '3.1.2.7', rejected(400)),
    ('lwsruri', '3.1.2.8', rejected(400)),
    ('lwsstart', '3.1.2.9', rejected(400)),
    ('trws', '3.1.2.10', rejected(400)),
    ('escruri', '3.1.2.11', rejected(400, also=relayed(
        _no_uri_headers, 'relayed without the escaped headers'))),
    ('baddate', '3.1.2.12', rejected(400, also=relayed(
        why='relayed, the Date unused'))),
    ('regbadct', '3.1.2.13', rejected(400, also=processed(405))),
    ('badaspec', '3.1.2.14', rejected(400, also=processed(200))),
    ('baddn', '3.1.2.15', rejected(400, unanswerable=True)),
    ('badvers', '3.1.2.16', rejected(505)),
    ('mismatch01', '3.1.2.17', rejected(400)),
    ('mismatch02', '3.1.2.18', rejected(501, 400)),
    ('bigcode', '3.1.2.19', None),
    # 3.2 transaction layer
    ('badbranch', '3.2.1', rejected(400, also=processed(200))),
    # 3.3 application layer
    ('insuf', '3.3.1', rejected(400)),
    ('unkscm', '3.3.2', rejected(416)),
    ('novelsc', '3.3.3', rejected(416, 404)),
    ('unksm2', '3.3.4', processed(405)),
    ('bext01', '3.3.5', rejected(420, answer=_unsupported)),
    ('invut', '3.3.6', relayed()),
    ('regaut01', '3.3.7', processed(405)),
    ('multi01', '3.3.8', rejected(400)),
    ('mcl01', '3.3.9', rejected(400)),
    ('bcast', '3.3.10', None),
    ('zeromf', '3.3.11', processed(483, 200)),
    ('cparam01', '3.3.12', processed(405)),
    ('cparam02', '3.3.13', processed(405)),
    ('regescrt', '3.3.14', processed(405)),
    ('sdp01', '3.3.15', rejected(406, 400, also=relayed(
        why='relayed: the callee decides'))),
    # 3.4 backward compatibility
    ('inv2543', '3.4.1', relayed()),
]

# The responses: (valid?, check of the caller's answers in a transaction)
RESPONSES = {
    'unreason': (True, lambda out: any(
        m.start_line.encode('latin-1').startswith(
            b'SIP/2.0 200 = 2**3 * 5**2 \xd0\xbd\xd0\xbe') for m in
        out.answers), 'accepted; relayed with its reason phrase'),
    'noreason': (True, lambda out: out.final is not None and
                 out.final.status == 486, 'accepted (a 100 is not '
                 'relayed); the call goes on'),
    'scalarlg': (False, lambda out: not any(
        m.status == 503 for m in out.answers), 'discarded: never relayed'),
    'bigcode': (False, lambda out: all(
        m.status in (100, 486) for m in out.answers) and out.final is not
        None, 'dropped: never relayed'),
    'bcast': (True, lambda out: any(
        m.status == 200 and len(m.header_all('Via')) == 1 and
        '255.255.255.255' not in m.raw for m in out.answers),
        'accepted; nothing sent toward its broadcast Via'),
}


def read(name):
    with open(os.path.join(TORTURE, name + '.dat'), 'rb') as f:
        return f.read()


INVITE = ('INVITE sip:bob@example.com SIP/2.0\r\n'
          'Via: SIP/2.0/UDP caller.invalid;branch=z9hG4bK%(n)s;rport\r\n'
          'Max-Forwards: 70\r\n'
          'From: <sip:alice@example.com>;tag=a%(n)s\r\n'
          'To: <sip:bob@example.com>\r\n'
          'Call-ID: torture-%(n)s@example.com\r\n'
          'CSeq: 1 INVITE\r\n'
          'Contact: <sip:alice@%(ip)s>\r\n'
          'Content-Type: application/sdp\r\n'
          'Content-Length: 5\r\n\r\nv=0\r\n')


def response_case(bench, name):
    """(ok, want, outcome) of a torture response, alone and in a call:
    the callee answers the relayed INVITE with it, then with 486."""
    valid, check, want = RESPONSES[name]
    raw = read(name)
    alone = bench.exchange(raw, tcp=over_tcp(raw))
    ok = not alone.answers and not alone.relayed and (
        not valid or not alone.refused)

    def respond(req):
        bench.callee.send(as_answer(raw, req), bench.engine)
        time.sleep(0.2)
        return busy(req)

    bench.respond = respond
    invite = INVITE % {'n': name, 'ip': h.CALLER_IP}
    call = bench.exchange(invite.encode(), window=2.0)
    bench.respond = busy
    return ok and check(call), want, '%s; in a call: %s' % (alone, call)


@t.test
def rfc4475(ctx):
    bench = Bench(ctx)
    passed, failed = [], []
    for name, section, check in CASES:
        if check is None:
            ok, want, got = response_case(bench, name)
        else:
            raw = read(name)
            out = bench.exchange(raw, tcp=over_tcp(raw))
            ok, want = check(out)
            got = str(out)
        assert bench.rh.alive(), 'rehomed died on ' + name
        line = '%-10s %-8s RFC 4475: %s; got: %s' % (name, section, want,
                                                      got)
        (passed if ok else failed).append(line)

    for line in passed:
        print('  ok   ' + line)
    for line in failed:
        print('  FAIL ' + line)
    print('%d of %d handled as RFC 4475 says' % (len(passed), len(CASES)),
          flush=True)
    assert not failed, '\n  '.join(['not as RFC 4475 says:'] + failed)


t.main()
