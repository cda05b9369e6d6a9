"""nodes.py  Helpers of the multi-node tests (re-homing, policies).

A cluster of rehomed nodes sharing one Redis, their control API (status,
jobs, metrics, rehomectl), and what an endpoint received, in the order
and at the time its sipp traced it, so that events on two endpoints can
be compared.
"""
import re
import subprocess
import time

from .common import (CALLER_IP, REHOMECTL, free_port, read_text, slow,
                     wait_until)
from . import metrics
from .sip import parse_trace


def trace(sipp):
    """[SipMsg] of a sipp's message trace so far, each with .time."""
    return parse_trace(read_text(sipp.trace_path))


def received(sipp, method=None):
    """[(Unix time, SipMsg)] requests the endpoint received (of one
    method), each once: a retransmission (the same Call-ID, CSeq and top
    Via again: the endpoint answered after T1, as a loaded one may) is no
    new request."""
    seen = set()
    out = []
    for m in trace(sipp):
        if m.direction != 'received' or not m.is_request:
            continue
        key = (m.call_id, m.cseq, m.header('Via'))
        if key not in seen and (method is None or m.method == method):
            out.append((m.time, m))
        seen.add(key)
    return out


def o_line(body):
    """The o= line of an SDP body, None without one."""
    m = re.search(r'^o=.*$', body or '', re.M)
    return m.group(0).strip() if m else None


def contact_uri(msg):
    m = re.search(r'<([^>]+)>', msg.header('Contact') or '')
    return m.group(1) if m else None


def cseqs_increase(msgs):
    """True if the non-ACK requests' CSeq numbers strictly increase and
    every ACK carries the number of the INVITE before it."""
    last = last_invite = None
    for m in msgs:
        num, method = m.cseq
        if method == 'ACK':
            if num != last_invite:
                return False
            continue
        if last is not None and num <= last:
            return False
        last = num
        if method == 'INVITE':
            last_invite = num
    return True


def wait_job(node, job, timeout=30.0):
    """Poll GET /v1/jobs/ID until the job is no longer running (at most
    `timeout` times SLOW)."""
    path = '/v1/jobs/%d' % job['job']
    deadline = time.monotonic() + slow(timeout)
    while job.get('state') == 'running' and time.monotonic() < deadline:
        time.sleep(0.05)
        status, job = node.ctl.get(path)
        assert status == 200, 'GET %s: %s %s' % (path, status, job)
    assert job.get('state') != 'running', 'job still running: %s' % job
    return job


def post_job(node, path, body, timeout=30.0):
    """POST a job and follow it to its end: the final job object."""
    status, job = node.ctl.post(path, body)
    assert status == 202, 'POST %s %s: %s %s' % (path, body, status, job)
    return wait_job(node, job, timeout)


def wait_confirmed(node, n, timeout=10.0):
    ok = wait_until(lambda: node.dialog_counts()['confirmed'] >= n,
                      timeout)
    assert ok, 'confirmed dialogs: %s' % node.dialog_counts()


# ---------------------------------------------------------- two nodes

def cluster(ctx, upstream, n=2, shtag='service', transports=('udp', 'tcp'),
            extra=(), node_kw=None, node_timeout=1000, active=1, proxied=(),
            **kw):
    """A Redis and n rehomed nodes (node `active` active for `shtag`, the
    others backup), same cluster, secret and listener tag, node i on
    127.0.0.i; transports: their listeners, the first one's address is the
    node's sip_addr (tls takes the port after udp/tcp's); extra: more
    config lines; node_timeout None: the default; proxied: numbers of the
    nodes that reach Redis through a TcpProxy the test can cut (as
    node.redis_proxy; the Redis is node.redis_server); kw: more Rehomed
    arguments, node_kw(i): those of node i only (shtags and default_shtag
    included). Returns the list of nodes, once every node sees every other
    one up and is synced."""
    redis = ctx.redis()
    timeout = ['node_timeout %d' % node_timeout] if node_timeout else []
    common = dict(cluster='rh%d' % redis.port,
                  repl_secret='test-secret-0123456789', upstream=upstream,
                  extra=timeout + list(extra), **kw)
    nodes = []
    for i in range(1, n + 1):
        port = free_port(2)
        ip = '127.0.0.%d' % i
        proxy = ctx.tcpproxy(redis.addr) if i in proxied else None
        args = dict(common,
                    shtags={shtag: 'active' if i == active else 'backup'})
        args.update(node_kw(i) if node_kw else {})
        node = ctx.rehomed(
            name='node%d' % i, node_id='node%d' % i,
            redis=proxy.addr if proxy else redis.addr,
            listens=['%s:%s:%d tag=public' % (
                tp, ip, port + 1 if tp == 'tls' else port)
                for tp in transports],
            **args)
        node.redis_proxy = proxy
        node.redis_server = redis
        nodes.append(node)
    ok = wait_until(lambda: all(synced(x, n) for x in nodes), 10)
    assert ok, [x.ctl.get('/v1/status')[1] for x in nodes]
    return nodes


def status(node):
    st, data = node.ctl.get('/v1/status')
    assert st == 200, data
    return data


def synced(node, n):
    data = status(node)
    up = [x for x in data.get('nodes', []) if x.get('state') == 'up']
    return data.get('synced') and len(up) == n


def node_state(node, other):
    for x in status(node).get('nodes', []):
        if x.get('id') == other:
            return x.get('state')
    return None


def kill(ctx, node):
    """SIGKILL a node and forget it (its exit is no test failure)."""
    node.popen.kill()
    node.wait(5)
    ctx.procs.remove(node)


def take_over(ctx, dead, taker, tag, calls):
    """SIGKILL dead, wait until taker sees it down, then re-home tag on
    taker with rehomectl: every one of the calls moved, none failed."""
    kill(ctx, dead)
    assert wait_until(lambda: node_state(taker, dead.node_id) == 'down',
                      5), status(taker)
    rc, out, err = rehomectl(taker, 'rehome', tag)
    assert rc == 0, 'rehomectl: %d\n%s%s' % (rc, out, err)
    assert '%d moved, 0 failed' % calls in out, out


def replicas(node):
    return node.dialog_counts().get('replicas', 0)


def metric(node, name):
    """A sample of GET /metrics ("name{labels}"), 0 when absent; the
    whole exposition is linted first (metrics.lint)."""
    text = metrics.scrape(node).text
    for line in text.splitlines():
        key, _, value = line.rpartition(' ')
        if key == name:
            return float(value)
    return 0


def rehomectl(node, *args, timeout=60):
    """Run rehomectl against a node: (exit status, stdout, stderr)."""
    argv = [REHOMECTL, '-s', node.ctl_addr, '-t', node.token] + \
        list(args)
    p = subprocess.run(argv, capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def reinvites(sipp):
    """INVITEs the endpoint received inside a call (with a To tag)."""
    return [m for _, m in received(sipp, 'INVITE')
            if 'tag=' in (m.header('To') or '')]


def per_call_cseqs_ok(sipp):
    """Every call's received requests have strictly increasing CSeqs."""
    calls = {}
    for _, m in received(sipp):
        calls.setdefault(m.call_id, []).append(m)
    bad = [cid for cid, msgs in calls.items() if not cseqs_increase(msgs)]
    return bad


def reinvite_log(sipp):
    """{Call-ID: [(Unix time, Contact URI)]} of the re-INVITEs the
    endpoint received, in order: who re-homed each call, and when."""
    calls = {}
    for when, m in received(sipp, 'INVITE'):
        if 'tag=' in (m.header('To') or ''):
            calls.setdefault(m.call_id, []).append((when, contact_uri(m)))
    return calls


# ---------------------------------------------------------- policies

class Probe:
    """INVITEs from a fresh UDP peer, to see what the policy decides."""

    def __init__(self, ctx, rh):
        self.ctx = ctx
        self.rh = rh

    def invite(self, from_uri='sip:alice@example.com'):
        """The final response (SipMsg) to one INVITE, ACKed."""
        peer = self.ctx.udp(CALLER_IP)
        req = peer.request('INVITE', 'sip:bob@%s' % self.rh.sip_addr)
        req = re.sub(r'^From: <[^>]*>', 'From: <%s>' % from_uri, req,
                     flags=re.M)
        peer.send(req, self.rh.sip_addr)
        final = [m for m in peer.recv(slow(3.0)) if m.status >= 200]
        assert final, 'no final response to the INVITE'
        resp = final[0]
        ack = req.replace('INVITE sip:', 'ACK sip:', 1)
        ack = re.sub(r'^CSeq: 1 INVITE', 'CSeq: 1 ACK', ack, flags=re.M)
        ack = re.sub(r'^To: .*$', 'To: %s' % resp.header('To'), ack,
                     flags=re.M)
        peer.send(ack, self.rh.sip_addr)
        return resp

    def reason(self):
        resp = self.invite()
        return resp.start_line.split(' ', 2)[2]


# ---------------------------------------------------------- dialog sets

def dialogs(node):
    """{did: dialog} of GET /v1/dialogs (every tag, up to 10000)."""
    st, data = node.ctl.get('/v1/dialogs?limit=10000')
    assert st == 200, 'dialogs %s: %s' % (st, data)
    return {d['did']: d for d in data['dialogs']}


def replica_diffs(served, replicas):
    """Differences between the dialogs a node serves and another node's
    replicas of them ({did: dialog} each), every field compared but
    `replica`: a list of strings, [] when the sets are equal."""
    diffs = []
    only_a, only_b = set(served) - set(replicas), set(replicas) - set(served)
    if only_a or only_b:
        diffs.append('dids: %d missing from the replicas, %d extra' % (
            len(only_a), len(only_b)))
    for did in set(served) & set(replicas):
        a, b = dict(served[did]), dict(replicas[did])
        if a.pop('replica') or not b.pop('replica'):
            diffs.append('%s: not served / replica' % did)
        elif a != b:
            diffs.append('%s differs: %s vs %s' % (did, a, b))
    return diffs
