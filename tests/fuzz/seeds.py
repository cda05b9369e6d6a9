"""seeds.py  Seed corpora of the fuzz targets, from real traffic.

Runs what the integration tests run (a Redis, two rehomed nodes in a
cluster, a call between two raw UAs with re-INVITEs, INFO, OPTIONS and a
BYE from either side, a move of the call to the other node, a drain, a tag taken over and
a re-home)
and keeps what crossed:

- sip: every message the UAs sent and received, the in-dialog requests
  rewritten into the fixed dialog of fuzz_sip.c (its Request-URI key,
  Call-ID and tags) so that they match it; the RFC 4475 messages of
  tests/torture; the messages of the sipp scenarios in tests/sipp;
- cluster: every message on the cluster's Redis channels, as fuzz_cluster.c
  takes it (a byte naming the channel, then the body, seal and stamp off);
- dialog_codec: the dialog JSON of every replication message;
- ctl: the control API requests rehomectl and the tests make, with the
  fuzz target's token; a byte in front sets the read size;
- conf: the configs the harness wrote for the nodes, and conf/rehome.conf.

Files are named by the SHA-1 of their content, as libFuzzer names its own,
and written to tests/fuzz/corpus/<target>/; existing files stay. Run with
the environment of the integration tests, e.g.

    REHOMED=build/rehomed REHOMECTL=build/rehomectl REHOME_SRC=. \\
    PYTHONPATH=tests/integration python3 tests/fuzz/seeds.py
"""
import glob
import hashlib
import os
import re
import sys
import threading
import time

import harness as h
from harness import nodes as lib
from harness import rawua

SRC = os.environ.get('REHOME_SRC', '.')
CORPUS = os.path.join(SRC, 'tests', 'fuzz', 'corpus')

# the fixed dialog of fuzz_sip.c
FUZZ_DID = '0123456789abcdef'
FUZZ_KEY = {'a': '1111111111111111', 'b': '2222222222222222'}
FUZZ_CALLID = {'a': 'fuzzcall@127.0.0.1',
               'b': 'rh-%s-3333333333333333' % FUZZ_DID}
FUZZ_TAG = {'a': 'alicetag', 'b': 'bobtag'}
FUZZ_TOKEN = 'fuzz-token-0123456789'
CHANNELS = [':nodes', ':shtag', ':repl', ':rehome']   # fuzz_cluster.c

RH_USER = re.compile(r'rh-[0-9a-f]{16}-([ab])-[0-9a-f]{16}')

written = {}


def save(target, data):
    if isinstance(data, str):
        data = data.encode('latin-1')
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, hashlib.sha1(data).hexdigest())
    if not os.path.exists(path):
        with open(path, 'wb') as f:
            f.write(data)
        written[target] = written.get(target, 0) + 1


def set_tag(value, tag):
    value = re.sub(r';tag=[^;>\s]*', '', value)
    return value + ';tag=' + tag


def into_fixed_dialog(text):
    """An in-dialog request to rh-<did>-<leg>-<key>, made the fixed
    dialog's: its R-URI user, Call-ID and tags, as that leg's."""
    m = RH_USER.search(text.split('\r\n', 1)[0])
    if not m:
        return None
    leg = m.group(1)
    other = 'b' if leg == 'a' else 'a'
    head, sep, body = text.partition('\r\n\r\n')
    lines = head.split('\r\n')
    lines[0] = RH_USER.sub('rh-%s-%s-%s' % (FUZZ_DID, leg, FUZZ_KEY[leg]),
                           lines[0])
    for i, line in enumerate(lines[1:], 1):
        name, _, value = line.partition(':')
        key = name.strip().lower()
        if key in ('call-id', 'i'):
            lines[i] = '%s: %s' % (name, FUZZ_CALLID[leg])
        elif key in ('from', 'f'):
            lines[i] = '%s:%s' % (name, set_tag(value, FUZZ_TAG[leg]))
        elif key in ('to', 't'):
            lines[i] = '%s:%s' % (name, set_tag(value, FUZZ_TAG[other]))
    return '\r\n'.join(lines) + sep + body


class Recorder:
    """Every message a raw UA sends or takes."""

    def __init__(self, ua):
        self.sent, self.got = [], []
        send, take = ua.send, ua.take

        def rec_send(text, dst):
            self.sent.append(text)
            return send(text, dst)

        def rec_take(pred, timeout=5.0):
            msg = take(pred, timeout)
            if msg is not None:
                self.got.append(msg.raw)
            return msg

        ua.send, ua.take = rec_send, rec_take


class Channels(threading.Thread):
    """Every message on the cluster's channels, raw."""

    def __init__(self, redis, cluster):
        super().__init__(daemon=True)
        self.sub = redis.client.pubsub(ignore_subscribe_messages=True)
        self.sub.psubscribe(cluster + ':*')
        self.msgs = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            msg = self.sub.get_message(timeout=0.2)
            if msg and msg['type'] == 'pmessage':
                self.msgs.append((msg['channel'], msg['data']))

    def stop(self):
        self.halt.set()
        self.join(5)
        self.sub.close()
        return self.msgs


def answer_refreshes(uas):
    """What a re-home asks of the endpoints: 200 to its re-INVITEs
    (with SDP) and UPDATEs."""
    for ua in uas:
        req = ua.take(lambda m: m.is_request and
                      m.method in ('INVITE', 'UPDATE'), 0.05)
        if req:
            ua.send(rawua.response(req, 200, 'OK', contact=ua.contact('ua'),
                                   body=rawua.SDP_CALLER),
                    rawua.via_addr(req))


def call_traffic(ctx):
    """A call with its dialog-changing requests, moved and drained."""
    caller = rawua.Ua(ctx, h.CALLER_IP)
    callee = rawua.Ua(ctx, h.CALLEE_IP)
    recs = [Recorder(caller), Recorder(callee)]
    node1, node2 = lib.cluster(ctx, 'udp:%s' % callee.addr)
    chans = Channels(ctx.procs[0], node1.conf_text.split('cluster ')[1]
                     .split()[0])
    chans.start()

    call = rawua.Call(caller, callee, node1.sip_addr)
    call.setup()
    for leg, peer in ((call.caller, callee), (call.callee, caller)):
        for method, body in (('INVITE', rawua.SDP_CALLER), ('INFO', ''),
                             ('OPTIONS', ''), ('UPDATE', rawua.SDP_CALLEE)):
            leg.send(leg.request(method, body=body))
            req = peer.expect(rawua.is_request(method), method)
            peer.send(rawua.response(req, 200, 'OK', body=body),
                      rawua.via_addr(req))
            ok = leg.ua.expect(rawua.is_response(200, method), '200')
            if method == 'INVITE':
                leg.send(leg.request('ACK', cseq=leg.cseq))
                peer.expect(rawua.is_request('ACK'), 'ACK')
            del ok

    for node, args in ((node1, ('move', 'service', '--to', 'node2',
                                '--percent', '100')),
                       (node2, ('drain',)), (node2, ('undrain',)),
                       (node2, ('shtag', 'activate', 'service')),
                       (node2, ('rehome', 'service')),
                       (node2, ('shtag', 'release', 'service'))):
        job = threading.Thread(target=lib.rehomectl, args=(node,) + args,
                               kwargs={'timeout': 20}, daemon=True)
        job.start()
        while job.is_alive():
            answer_refreshes((caller, callee))
    caller.take_all(lambda m: True, 1.0)
    callee.take_all(lambda m: True, 1.0)
    call.caller.send(call.caller.request('BYE'))
    callee.take(rawua.is_request('BYE'), 3.0)
    time.sleep(1.0)

    for rec in recs:
        for text in rec.sent + rec.got:
            save('sip', text)
            fixed = into_fixed_dialog(text)
            if fixed:
                save('sip', fixed)

    for chan, data in chans.stop():
        raw = data.encode('latin-1')
        for i, suffix in enumerate(CHANNELS):
            if not chan.endswith(suffix):
                continue
            # "<seal> <boot> <seq> <ms> <node> <body>": the body
            body = raw.split(b' ', 5)[5]
            save('cluster', bytes([i]) + body)
            if suffix == ':repl' and b'\n' in body:
                dialog = body.split(b'\n', 1)[1]
                save('dialog_codec', dialog)
                save('cluster', bytes([16]) + dialog)   # a snapshot

    for node in (node1, node2):
        save('conf', node.conf_text)


def ctl_requests():
    paths = [('GET', '/v1/status', None), ('GET', '/v1/dialogs', None),
             ('GET', '/v1/dialogs/%s' % FUZZ_DID, None),
             ('DELETE', '/v1/dialogs/%s' % FUZZ_DID, None),
             ('GET', '/metrics', None), ('GET', '/v1/jobs', None),
             ('GET', '/v1/jobs/1', None),
             ('POST', '/v1/log_level', '{"level":"error"}'),
             ('POST', '/v1/move', '{"shtag":"service","to":"node2",'
              '"percent":30}'),
             ('POST', '/v1/drain', '{}'), ('POST', '/v1/undrain', '{}'),
             ('POST', '/v1/rehome', '{"shtag":"service"}'),
             ('POST', '/v1/shtags/service/active', '{}')]
    for method, path, body in paths:
        body = body or ''
        req = ('%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n'
               'Authorization: Bearer %s\r\n' % (method, path, FUZZ_TOKEN))
        if body:
            req += 'Content-Type: application/json\r\n'
        req += 'Content-Length: %d\r\n\r\n%s' % (len(body), body)
        save('ctl', b'\xff' + req.encode())
        save('ctl', b'\x00' + req.encode())   # byte by byte
        save('ctl', b'\xff' + (req * 2).encode())   # pipelined


def file_seeds():
    for path in sorted(glob.glob(os.path.join(SRC, 'tests', 'torture',
                                              '*.dat'))):
        with open(path, 'rb') as f:
            save('sip', f.read())
    for path in sorted(glob.glob(os.path.join(SRC, 'tests', 'sipp',
                                              '*.xml'))):
        with open(path, encoding='latin-1') as f:
            xml = f.read()
        for block in re.findall(r'<!\[CDATA\[(.*?)\]\]>', xml, re.S):
            lines = [ln.strip() for ln in block.strip().splitlines()]
            text = '\r\n'.join(lines)
            text = re.sub(r'\[[a-z_$]+\]', '1', text)
            save('sip', text + ('\r\n' if text.endswith('\r\n') else
                                '\r\n\r\n'))
    with open(os.path.join(SRC, 'conf', 'rehome.conf'), 'rb') as f:
        save('conf', f.read())


def main():
    t = h.Test(__file__)
    t.test(call_traffic)
    file_seeds()
    ctl_requests()
    t.main()


if __name__ == '__main__':
    try:
        main()
    finally:
        print('seeds written: %s' % written, file=sys.stderr)
