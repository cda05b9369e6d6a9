"""ws.py  A SIP endpoint over WebSocket (RFC 7118), as a browser would be.

WsPeer is a minimal RFC 6455 client on a plain socket: the HTTP upgrade
with Sec-WebSocket-Protocol: sip, masked text frames out, frames in
(pings answered). WsUa is harness.ua's Ua speaking over it: its Via says
WS and its Contact has a made-up .invalid host, as JsSIP and SIP.js
write them, so anything sent to it must come over its own connection.
Imported on its own (`from harness.ws import WsUa`).
"""
import base64
import hashlib
import os
import socket
import ssl
import struct

from .common import TestFailure
from .ua import Ua

GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'


class _Frames:
    """The socket face Ua expects (settimeout, recvfrom): one SIP message
    per WebSocket frame."""

    def __init__(self, peer):
        self.peer = peer

    def settimeout(self, t):
        self.peer.conn.settimeout(t)

    def recvfrom(self, _bufsize):
        return self.peer.recv_frame(), self.peer.remote


class WsPeer:
    """ca: a CA file for wss (TLS, the server verified against it)."""

    def __init__(self, addr, ca=None):
        host, _, port = addr.rpartition(':')
        self.remote = (host, int(port))
        self.conn = socket.create_connection(self.remote, 5)
        if ca:
            tls = ssl.create_default_context(cafile=ca)
            tls.check_hostname = False
            self.conn = tls.wrap_socket(self.conn)
        self.via = b'SIP/2.0/WSS' if ca else b'SIP/2.0/WS'
        self.scheme = 'wss' if ca else 'ws'
        self.ip, self.port = self.conn.getsockname()[:2]
        self.buf = b''
        self.sock = _Frames(self)
        self._upgrade(addr)

    def _upgrade(self, addr):
        key = base64.b64encode(os.urandom(16)).decode()
        self.conn.sendall((
            'GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n'
            'Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n'
            'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n'
            '\r\n' % (addr, key)).encode())
        while b'\r\n\r\n' not in self.buf:
            data = self.conn.recv(4096)
            if not data:
                raise TestFailure('WebSocket upgrade: connection closed')
            self.buf += data
        head, _, self.buf = self.buf.partition(b'\r\n\r\n')
        accept = base64.b64encode(hashlib.sha1(
            (key + GUID).encode()).digest()).decode()
        text = head.decode('latin-1')
        if ' 101 ' not in text.split('\r\n')[0] or accept not in text:
            raise TestFailure('WebSocket upgrade refused:\n' + text)

    def close(self):
        self.conn.close()

    def send(self, data, dst=None, opcode=0x1):
        """One masked frame (text by default); dst is ignored: everything
        goes over the connection."""
        if isinstance(data, str):
            data = data.encode()
        if opcode == 0x1 and data[:4] != b'SIP/':
            data = data.replace(b'SIP/2.0/UDP', self.via, 1)
        head = bytes([0x80 | opcode])
        n = len(data)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack('!H', n)
        else:
            head += bytes([0x80 | 127]) + struct.pack('!Q', n)
        mask = os.urandom(4)
        self.conn.sendall(head + mask + bytes(
            b ^ mask[i % 4] for i, b in enumerate(data)))

    def _parse(self):
        """(opcode, payload) of a whole frame at the head of the buffer,
        taken off it; None until one has fully arrived."""
        buf = self.buf
        if len(buf) < 2:
            return None
        n, pos = buf[1] & 0x7f, 2
        if n >= 126:
            size = 2 if n == 126 else 8
            if len(buf) < pos + size:
                return None
            n = int.from_bytes(buf[pos:pos + size], 'big')
            pos += size
        mask = None
        if buf[1] & 0x80:
            mask, pos = buf[pos:pos + 4], pos + 4
        if len(buf) < pos + n:
            return None
        data, self.buf = buf[pos:pos + n], buf[pos + n:]
        if mask:
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        return buf[0] & 0x0f, data

    def recv_frame(self):
        """The payload of the next data frame; raises socket.timeout
        (the buffer kept) when none comes in time."""
        while True:
            frame = self._parse()
            if frame is None:
                data = self.conn.recv(65536)
                if not data:
                    raise OSError('WebSocket closed')
                self.buf += data
                continue
            opcode, data = frame
            if opcode == 0x9:
                self.send(data, opcode=0xa)
            elif opcode == 0x8:
                raise OSError('WebSocket closed by the server')
            elif opcode in (0x1, 0x2):
                return data


class WsUa(Ua):
    """A Ua connected to rehomed's ws listener at `addr` (wss: with the
    CA file `ca`)."""

    def __init__(self, ctx, addr, name, ca=None):
        super().__init__(ctx, '127.0.0.1', name)
        self.peer = WsPeer(addr, ca)
        ctx.peers.append(self.peer)
        self.ip, self.port = self.peer.ip, self.peer.port
        self.contact = 'sip:%s@%s.invalid;transport=%s' % (
            name, os.urandom(4).hex(), self.peer.scheme)
