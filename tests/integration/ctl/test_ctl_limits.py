#!/usr/bin/env python3
"""test_ctl_limits.py  The control API against hostile clients (raw sockets).

- slowloris: a client trickling its request a byte every 500 ms, and one
  that connects and sends nothing, both get 408 and are closed 10 s after
  they connected, while other clients are served in well under a second
  all along.
- connection_cap: 300 idle connections: 256 are held, the 44 beyond get
  503 {"error": "too many connections"} at once and are closed, so does a
  new request while the cap holds; once some idle clients leave, a new
  request is answered. Counted in /metrics, logged.
- big_body: a 10 MB body is answered 413 before it is read, and rehomed's
  RSS does not grow by it; a body under the limit is read whole and the
  connection goes on with the next request.
- wrong_token_huge_body: a wrong or missing token with a 10 GB
  Content-Length gets 401 at once, the connection closed unread.
- framing: oversized headers (431), Transfer-Encoding (501), bad or
  doubled Content-Length and a garbage request line (400), pipelined
  requests answered in order, Expect: 100-continue.
"""
import json
import select
import socket
import threading
import time

import harness as h  # noqa: E402
from harness import nodes as lib  # noqa: E402

t = h.Test(__file__)

CONN_MAX = 256
REQUEST_S = 10
BODY_MAX = 64 * 1024


def connect(rh):
    return socket.create_connection((rh.ctl.host, rh.ctl.port), timeout=5)


def head(method, path, token=h.CTL_TOKEN, extra=()):
    lines = ['%s %s HTTP/1.1' % (method, path), 'Host: rehome']
    if token is not None:
        lines.append('Authorization: Bearer %s' % token)
    lines += list(extra)
    return ('\r\n'.join(lines) + '\r\n\r\n').encode()


def read_all(sock, timeout):
    """Bytes until the peer closes (or resets), or `timeout` seconds."""
    data = b''
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        sock.settimeout(max(end - time.monotonic(), 0.01))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


def responses(data):
    """[(status, headers dict, body bytes)] of the responses in data."""
    out = []
    while data:
        top, sep, rest = data.partition(b'\r\n\r\n')
        assert sep, 'incomplete response: %r' % data[:200]
        lines = top.decode('latin-1').split('\r\n')
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            name, _, value = line.partition(':')
            hdrs[name.strip().lower()] = value.strip()
        n = int(hdrs.get('content-length', 0))
        out.append((status, hdrs, rest[:n]))
        data = rest[n:]
    return out


def one_response(data):
    resps = responses(data)
    assert len(resps) == 1, resps
    return resps[0]


def json_error(resp, status, text=None):
    st, hdrs, body = resp
    assert st == status, (st, body)
    assert hdrs['content-type'].startswith('application/json'), hdrs
    err = json.loads(body)['error']
    assert text is None or text in err, err
    return err


def closed_count(rh, reason):
    return lib.metric(rh, 'rehome_ctl_connections_closed_total'
                          '{reason="%s"}' % reason)


def rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    raise AssertionError('no VmRSS for %d' % pid)


@t.test
def slowloris(ctx):
    rh = ctx.rehomed()
    start = time.monotonic()
    slow, mute = connect(rh), connect(rh)
    request = head('GET', '/v1/status')

    def trickle():
        try:
            for byte in request[:-1]:   # never the last byte
                slow.send(bytes([byte]))
                time.sleep(0.5)
        except OSError:
            pass

    threading.Thread(target=trickle, daemon=True).start()

    took = []
    while time.monotonic() - start < REQUEST_S - 1.5:
        t0 = time.monotonic()
        st, data = rh.ctl.get('/v1/status')
        took.append(time.monotonic() - t0)
        assert st == 200, data
        time.sleep(0.5)
    assert max(took) < h.slow(1.0), took

    for sock, what in ((slow, 'trickling'), (mute, 'mute')):
        data = read_all(sock, start + REQUEST_S + h.slow(3) -
                        time.monotonic())
        at = time.monotonic() - start
        assert REQUEST_S - 0.5 < at < REQUEST_S + h.slow(2.5), (what, at)
        resp = one_response(data)
        json_error(resp, 408, 'no complete request within 10 s')
        assert resp[1]['connection'] == 'close', resp[1]
        sock.close()

    assert closed_count(rh, 'timeout') == 2
    assert rh.wait_log(r'no complete request within 10 s \(\d+ bytes in\)')


@t.test
def connection_cap(ctx):
    rh = ctx.rehomed()
    socks = [connect(rh) for _ in range(300)]
    refused = {}
    end = time.monotonic() + h.slow(3)
    while time.monotonic() < end:
        ready, _, _ = select.select([s for s in socks if s not in refused],
                                    [], [], 0.5)
        for s in ready:
            refused[s] = read_all(s, 1)
    assert len(refused) == 300 - CONN_MAX, len(refused)
    for data in refused.values():
        resp = one_response(data)
        assert json_error(resp, 503) == 'too many connections'
        assert resp[1]['connection'] == 'close'

    st, data = rh.ctl.get('/v1/status')
    assert (st, data) == (503, {'error': 'too many connections'}), \
        (st, data)
    assert rh.wait_log(r'refused, 256 connections are open')

    held = [s for s in socks if s not in refused]
    for s in held[:10]:
        s.close()
    assert h.wait_until(lambda: rh.ctl.get('/v1/status')[0] == 200, 3)

    assert closed_count(rh, 'over_capacity') >= 300 - CONN_MAX + 1
    connections = lib.metric(rh, 'rehome_ctl_connections')
    assert CONN_MAX - 10 <= connections <= CONN_MAX, connections
    for s in socks:
        s.close()


@t.test
def big_body(ctx):
    rh = ctx.rehomed()
    rh.ctl.get('/v1/status')
    before = rss_kib(rh.pid)

    sock = connect(rh)
    sock.sendall(head('POST', '/v1/policy/reload',
                      extra=['Content-Type: application/json',
                             'Content-Length: %d' % (10 << 20)]))

    def pump():
        try:
            sock.sendall(b' ' * (10 << 20))
        except OSError:
            pass

    pumper = threading.Thread(target=pump, daemon=True)
    t0 = time.monotonic()
    pumper.start()
    resp = one_response(read_all(sock, h.slow(5)))
    assert time.monotonic() - t0 < h.slow(2)
    json_error(resp, 413, 'over the limit of 65536')
    pumper.join(5)
    sock.close()

    grew = rss_kib(rh.pid) - before
    assert grew < 4096, 'RSS grew by %d KiB' % grew
    assert closed_count(rh, 'too_large') == 1

    # under the limit: read whole, and the connection goes on
    body = json.dumps({'pad': 'x' * (BODY_MAX - 100)}).encode()
    sock = connect(rh)
    sock.sendall(head('POST', '/v1/nope',
                      extra=['Content-Length: %d' % len(body)]) + body +
                 head('GET', '/v1/status'))
    data = b''
    end = time.monotonic() + 5
    while data.count(b'HTTP/1.1') < 2 and time.monotonic() < end:
        sock.settimeout(end - time.monotonic())
        data += sock.recv(65536)
    sock.close()
    first, second = responses(data)
    json_error(first, 404, 'no such endpoint')
    assert second[0] == 200 and json.loads(second[2])['node_id'] == 'node1'


@t.test
def wrong_token_huge_body(ctx):
    rh = ctx.rehomed()
    for token in ('wrong', None):
        sock = connect(rh)
        t0 = time.monotonic()
        sock.sendall(head('POST', '/v1/rehome', token=token,
                          extra=['Content-Length: 10000000000']))
        data = read_all(sock, h.slow(3))
        took = time.monotonic() - t0
        sock.close()
        assert took < h.slow(1.0), took
        resp = one_response(data)
        assert json_error(resp, 401) == 'bad or missing token'
        assert resp[1]['www-authenticate'].startswith('Bearer')
        assert resp[1]['connection'] == 'close'
    assert closed_count(rh, 'rejected') == 2


def exchange(rh, data, timeout=3):
    sock = connect(rh)
    sock.sendall(data)
    reply = read_all(sock, timeout)
    sock.close()
    return reply


@t.test
def framing(ctx):
    rh = ctx.rehomed()

    big = head('GET', '/v1/status', extra=['X-Pad: ' + 'a' * 17000])
    json_error(one_response(exchange(rh, big)), 431, '16384 bytes')

    chunked = head('POST', '/v1/rehome',
                   extra=['Transfer-Encoding: chunked']) + b'0\r\n\r\n'
    json_error(one_response(exchange(rh, chunked)), 501,
               'Transfer-Encoding')

    for clen in (['Content-Length: abc'],
                 ['Content-Length: 2', 'Content-Length: 3']):
        bad = head('POST', '/v1/rehome', extra=clen) + b'{}'
        json_error(one_response(exchange(rh, bad)), 400,
                   'bad Content-Length')

    json_error(one_response(exchange(rh, b'\x01\x02 nonsense\r\n\r\n')),
               400, 'malformed request')
    assert closed_count(rh, 'bad_request') == 4
    assert closed_count(rh, 'too_large') == 1

    # pipelined: answered in order, on the same connection
    sock = connect(rh)
    sock.sendall(head('GET', '/v1/status') + head('GET', '/v1/nope') +
                 head('GET', '/v1/dialogs'))
    data = b''
    end = time.monotonic() + 5
    while data.count(b'HTTP/1.1') < 3 and time.monotonic() < end:
        sock.settimeout(end - time.monotonic())
        data += sock.recv(65536)
    assert [r[0] for r in responses(data)] == [200, 404, 200], data

    # Expect: 100-continue is answered before the body is sent, which
    # then reaches the route (and is no JSON object)
    body = b'[1, 2]'
    sock.sendall(head('POST', '/v1/rehome',
                      extra=['Expect: 100-continue',
                             'Content-Length: %d' % len(body)]))
    sock.settimeout(3)
    assert sock.recv(100) == b'HTTP/1.1 100 Continue\r\n\r\n'
    sock.sendall(body)
    json_error(one_response(sock.recv(65536)), 400,
               'body is not a JSON object')
    sock.close()


t.main()
