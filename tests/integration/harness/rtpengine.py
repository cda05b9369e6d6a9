"""rtpengine.py  A throw-away rtpengine (Debian's rtpengine-daemon) in
userspace mode, an ng client to ask it about calls, and RTP endpoints.

rtpengine runs in the foreground as our child, stopped by its own PID,
with its ng and CLI ports and a small media port range drawn from
REHOME_TEST_PORTS, so that several can run side by side. `ip` is the
address its SDPs point at: give each relay of a test its own (any of
127.0.0.0/8) to see which relay a call's media goes through. Imported on
its own (`from harness import rtpengine`).
"""

import os
import random
import socket
import struct
import time

from .common import (CALLEE_IP, CALLER_IP, ENGINE_IP, TestFailure,
                     free_port, wait_until)
from .procs import Proc
from .ua import Ua

MEDIA_PORTS = 40


# ---------------------------------------------------------------- bencode

def bencode(value):
    if isinstance(value, int):
        return b'i%de' % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b'%d:%s' % (len(value), value)
    if isinstance(value, list):
        return b'l' + b''.join(map(bencode, value)) + b'e'
    return b'd' + b''.join(bencode(k) + bencode(v)
                           for k, v in sorted(value.items())) + b'e'


def bdecode(data, i=0):
    """(value, next index); strings come back as str."""
    c = data[i:i + 1]
    if c == b'i':
        end = data.index(b'e', i)
        return int(data[i + 1:end]), end + 1
    if c in (b'l', b'd'):
        items, i = [], i + 1
        while data[i:i + 1] != b'e':
            item, i = bdecode(data, i)
            items.append(item)
        if c == b'l':
            return items, i + 1
        return dict(zip(items[::2], items[1::2])), i + 1
    colon = data.index(b':', i)
    n = int(data[i:colon])
    return data[colon + 1:colon + 1 + n].decode('latin-1'), colon + 1 + n


class Rtpengine(Proc):
    """rtpengine with SDPs pointing at `ip`; .ng is "udp:IP:PORT", as a
    media_relay line names it."""

    def __init__(self, workdir, name='rtpengine', ip='127.0.0.30',
                 media_ports=MEDIA_PORTS):
        base = free_port(2 + media_ports)
        self.ip = ip
        self.ng_port = base
        self.ng = 'udp:%s:%d' % (ENGINE_IP, base)
        self.port_min, self.port_max = base + 2, base + 1 + media_ports
        super().__init__(name, [
            'rtpengine', '--config-file=none', '--interface=%s' % ip,
            '--listen-ng=%s:%d' % (ENGINE_IP, base),
            '--listen-cli=%s:%d' % (ENGINE_IP, base + 1),
            '--foreground', '--table=-1', '--no-fallback', '--log-stderr',
            '--delete-delay=0', '--port-min=%d' % self.port_min,
            '--port-max=%d' % self.port_max],
            os.path.join(workdir, name + '.log'))

    def start(self, timeout=10.0):
        super().start()
        if not wait_until(lambda: self.command('ping', timeout=0.2)
                          .get('result') == 'pong', timeout):
            raise TestFailure('rtpengine not answering ng:\n' +
                              self.log_tail())
        return self

    def command(self, command, timeout=1.0, **args):
        """One ng command; its reply as a dict ({} when none came)."""
        cookie = b'%x' % random.getrandbits(32)
        args['command'] = command
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        try:
            s.sendto(cookie + b' ' + bencode(args),
                     (ENGINE_IP, self.ng_port))
            data = s.recv(65535)
        except OSError:
            return {}
        finally:
            s.close()
        return bdecode(data.partition(b' ')[2])[0]

    def knows(self, call_id):
        """True while rtpengine has the call."""
        return self.command('query', **{'call-id': call_id}) \
            .get('result') == 'ok'


# -------------------------------------------------------------------- RTP

def sdp_media(sdp):
    """(address, port) of an SDP's first audio stream."""
    ip = port = None
    for line in sdp.splitlines():
        if line.startswith('c=IN IP4 '):
            ip = ip or line.split()[2]
        elif line.startswith('m=audio '):
            port = int(line.split()[1])
    return ip, port


class RtpPeer:
    """An endpoint's media socket: sends PCMU packets, counts arrivals."""

    def __init__(self, ip):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, free_port()))
        self.ip, self.port = self.sock.getsockname()
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)

    def sdp(self, name):
        return ('v=0\r\no=%s 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\n'
                't=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n'
                'a=sendrecv\r\n' % (name, self.ip, self.ip, self.port))

    def send(self, dst, count=25, interval=0.02):
        for _ in range(count):
            self.seq = (self.seq + 1) & 0xffff
            hdr = struct.pack('!BBHII', 0x80, 0, self.seq,
                              self.seq * 160 & 0xffffffff, self.ssrc)
            self.sock.sendto(hdr + b'\xff' * 160, dst)
            time.sleep(interval)

    def received(self, wait=0.5):
        """Packets that arrived (read without blocking after `wait`)."""
        time.sleep(wait)
        self.sock.setblocking(False)
        n = 0
        try:
            while self.sock.recv(2048):
                n += 1
        except BlockingIOError:
            pass
        return n

    def close(self):
        self.sock.close()


# ----------------------------------------------------------- in a test

def start(ctx, **kw):
    """An Rtpengine (see its arguments), started, stopped with the test."""
    rtp = Rtpengine(ctx.dir, **kw)
    ctx.procs.append(rtp)
    return rtp.start()


def endpoints(ctx):
    """A caller and a callee Ua, each with a media socket (.rtp) that its
    SDP offers."""
    caller, callee = Ua(ctx, CALLER_IP, 'alice'), Ua(ctx, CALLEE_IP, 'bob')
    for ua in (caller, callee):
        ua.rtp = RtpPeer(ua.ip)
        ua.sdp = ua.rtp.sdp(ua.name)
    return caller, callee


def media_flows(caller, callee, caller_sdp, callee_sdp):
    """RTP sent to the address each side was given reaches the other."""
    caller.rtp.received(0)
    callee.rtp.received(0)
    caller.rtp.send(sdp_media(caller_sdp))
    callee.rtp.send(sdp_media(callee_sdp))
    got_callee, got_caller = callee.rtp.received(), caller.rtp.received()
    assert got_callee >= 20, 'callee got %d of 25 RTP packets' % got_callee
    assert got_caller >= 20, 'caller got %d of 25 RTP packets' % got_caller


def relays(rh):
    """GET /v1/media/relays: {relay: its object}"""
    status, data = rh.ctl.get('/v1/media/relays')
    assert status == 200, data
    return {r['relay']: r for r in data['relays']}
