#!/usr/bin/env python3
"""@file tls_cost.py  What TLS costs rehomed: CPU per handshake, connections held

Run by hand (it is not a test), from the repository's root:
    PYTHONPATH=tests/integration python3 bench/tls_cost.py \
        [--calls 1000] [--held 1000] [--rehomed PATH]

rehomed listens on TLS (an ECDSA P-256 certificate from a CA made with
openssl, as the TLS tests make it) and relays to a UDP callee played by
this script. A caller, also this script, makes --calls calls (INVITE,
200, ACK, BYE, 200) one after the other, twice:

- reuse: every call over one TLS connection;
- fresh: every call over a new TLS connection (a full handshake, closed
  after the call).

rehomed's CPU (utime+stime of /proc/PID/stat) over each round, per call;
the difference is what a handshake costs the server (key exchange and
signature, session set-up and tear-down), in ms of CPU. Then --held calls
are set up at once, each from its own TLS connection, and held: the
sockets rehomed holds (its /proc/PID/fd), beyond its idle count, per
1000 calls. Calls to one upstream share one connection (libre keeps one
per peer address), so the figure is the callers' own connections.

Everything runs on 127.0.0.1 (callee on 127.0.0.20), started through
the integration harness and stopped by its PID. Ports:
REHOME_TEST_PORTS, default 27300-27399.
"""

import argparse
import os
import random
import socket
import ssl
import sys
import threading
import time

import harness as h
from harness import pki as pkilib
from common import cpu_ms, fds

os.environ.setdefault('REHOME_TEST_PORTS', '27300-27399')

SDP = ('v=0\r\no=- 1 1 IN IP4 127.0.0.99\r\ns=-\r\nc=IN IP4 127.0.0.99\r\n'
       't=0 0\r\nm=audio 4000 RTP/AVP 0\r\n')


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--calls', type=int, default=1000)
    ap.add_argument('--held', type=int, default=1000)
    ap.add_argument('--rehomed', default=h.REHOMED)
    return ap.parse_args()


def header(msg, name):
    for line in msg.split('\r\n')[1:]:
        key, _, value = line.partition(':')
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def callee(sock, stop):
    """A UDP callee: 200 to INVITE (with SDP) and BYE, nothing to ACK."""
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            data, src = sock.recvfrom(65535)
        except socket.timeout:
            continue
        msg = data.decode('latin-1')
        method = msg.split(' ', 1)[0]
        if method not in ('INVITE', 'BYE'):
            continue
        to = header(msg, 'To')
        if method == 'INVITE':
            to += ';tag=callee'
        body = SDP if method == 'INVITE' else ''
        lines = ['SIP/2.0 200 OK'] + \
            ['Via: ' + v for v in
             [ln.partition(':')[2].strip() for ln in msg.split('\r\n')
              if ln.lower().startswith('via:')]] + \
            ['From: ' + header(msg, 'From'), 'To: ' + to,
             'Call-ID: ' + header(msg, 'Call-ID'),
             'CSeq: ' + header(msg, 'CSeq'),
             'Contact: <sip:bob@%s:%d>' % sock.getsockname()]
        if body:
            lines.append('Content-Type: application/sdp')
        lines.append('Content-Length: %d' % len(body))
        sock.sendto(('\r\n'.join(lines) + '\r\n\r\n' + body).encode(), src)


class Caller:
    """One TLS connection to rehomed that makes calls over it."""

    def __init__(self, addr, ca):
        host, _, port = addr.rpartition(':')
        ctx = ssl.create_default_context(cafile=ca)
        ctx.check_hostname = False
        self.conn = ctx.wrap_socket(socket.create_connection(
            (host, int(port)), 5))
        self.addr = addr
        self.local = '%s:%d' % self.conn.getsockname()[:2]
        self.buf = b''

    def close(self):
        self.conn.close()

    def send(self, method, ruri, call_id, cseq, to, body=''):
        lines = ['%s %s SIP/2.0' % (method, ruri),
                 'Via: SIP/2.0/TLS %s;branch=z9hG4bK%x;rport' % (
                     self.local, random.getrandbits(48)),
                 'Max-Forwards: 70',
                 'From: <sip:alice@example.com>;tag=caller',
                 'To: %s' % to, 'Call-ID: %s' % call_id,
                 'CSeq: %d %s' % (cseq, method),
                 'Contact: <sip:alice@%s;transport=tls>' % self.local]
        if body:
            lines.append('Content-Type: application/sdp')
        lines.append('Content-Length: %d' % len(body))
        self.conn.sendall(('\r\n'.join(lines) + '\r\n\r\n' + body).encode())

    def final(self):
        """The next final response."""
        while True:
            head, sep, rest = self.buf.partition(b'\r\n\r\n')
            if sep:
                text = head.decode('latin-1')
                clen = int(header(text, 'Content-Length') or 0)
                if len(rest) >= clen:
                    self.buf = rest[clen:]
                    if int(text.split(' ', 2)[1]) >= 200:
                        return text
                    continue
            data = self.conn.recv(65536)
            if not data:
                raise OSError('connection closed')
            self.buf += data

    def call_up(self):
        """INVITE, 200, ACK: (call-id, to with tag, contact)."""
        call_id = '%x@bench' % random.getrandbits(64)
        to = '<sip:bob@example.com>'
        self.send('INVITE', 'sip:bob@%s' % self.addr, call_id, 1, to, SDP)
        ok = self.final()
        assert ok.startswith('SIP/2.0 200'), ok
        to = header(ok, 'To')
        target = header(ok, 'Contact').strip('<>')
        self.send('ACK', target, call_id, 1, to)
        return call_id, to, target

    def hang_up(self, call):
        call_id, to, target = call
        self.send('BYE', target, call_id, 2, to)
        ok = self.final()
        assert ok.startswith('SIP/2.0 200'), ok


def sockets(pid):
    return fds(pid, 'socket')


def rounds(rh, ca, calls):
    pid = rh.popen.pid
    one = Caller(rh.sip_addr, ca)
    one.hang_up(one.call_up())        # warm-up
    t0 = cpu_ms(pid)
    for _ in range(calls):
        one.hang_up(one.call_up())
    reuse = (cpu_ms(pid) - t0) / calls
    one.close()

    t0 = cpu_ms(pid)
    for _ in range(calls):
        c = Caller(rh.sip_addr, ca)
        c.hang_up(c.call_up())
        c.close()
    fresh = (cpu_ms(pid) - t0) / calls
    return reuse, fresh


def held(rh, ca, n):
    pid = rh.popen.pid
    time.sleep(1)
    idle = sockets(pid)
    callers = [Caller(rh.sip_addr, ca) for _ in range(n)]
    calls = [c.call_up() for c in callers]
    busy = sockets(pid)
    for c, call in zip(callers, calls):
        c.hang_up(call)
        c.close()
    return (busy - idle) * 1000.0 / n


def main():
    args = parse_args()
    ctx = h.Ctx('tls-cost')
    stop = threading.Event()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((h.CALLEE_IP, h.free_port()))
    thread = threading.Thread(target=callee, args=(udp, stop), daemon=True)
    thread.start()
    try:
        pki = pkilib.Pki(ctx.dir)
        tls, plain = h.free_port(), h.free_port()
        rh = ctx.rehomed(
            listens=['tls:%s:%d tag=public' % (h.ENGINE_IP, tls),
                     'udp:%s:%d tag=public' % (h.ENGINE_IP, plain)],
            upstream='udp:%s:%d' % udp.getsockname(), log_level='info',
            extra=['tls_cert %s' % pki.cert('node')],
            binary=args.rehomed)
        reuse, fresh = rounds(rh, pki.ca, args.calls)
        per_1000 = held(rh, pki.ca, args.held)
    finally:
        stop.set()
        problems = ctx.close()
        udp.close()
    print('calls per round:             %d' % args.calls)
    print('CPU per call, one connection: %.3f ms' % reuse)
    print('CPU per call, new connection: %.3f ms' % fresh)
    print('TLS handshake (difference):   %.3f ms CPU' % (fresh - reuse))
    print('connections held per 1000 calls (%d held, one TLS connection '
          'each, one UDP upstream): %.0f' % (args.held, per_1000))
    if problems:
        print('problems: %s' % problems, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
