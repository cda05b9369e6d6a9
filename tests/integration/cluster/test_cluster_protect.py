"""test_cluster_protect.py  No new call without protection.

Two nodes on one Redis (lib.cluster), node1 active for `service`, node2
backup; the endpoints are raw UDP UAs (harness.ua).

- backup_refuses_new_calls: an INVITE to node2, whose tag live node1
  holds, is answered 503 with Retry-After and reaches nobody; node2
  creates no dialog. The same call through node1 is set up and
  protected (status `repl.unprotected.total` 0).
- unprotected_is_shown: node1 releases the tag: nobody can protect a
  call then, so a new one is served, and the status, the metric and a
  warning in the log all show the unprotected dialogs; once node1 takes
  the tag again the log says every dialog is protected again.
"""
import random
import re

import harness as h
from harness import nodes as lib
from harness import metrics as hm
from harness.ua import Ua, call

t = h.Test(__file__)

TAG = 'service'


def two_uas(ctx):
    return Ua(ctx, h.CALLER_IP, 'alice'), Ua(ctx, h.CALLEE_IP, 'bob')


def upstream(ua):
    return 'udp:%s:%d' % (ua.ip, ua.peer.port)


def unprotected(node):
    return lib.status(node)['repl']['unprotected']


def invite(caller, callee, addr):
    """A new INVITE from caller to addr; the raw request text."""
    caller.call_id = '%x@%s' % (random.getrandbits(48), caller.ip)
    caller.local = '<sip:%s@example.com>' % caller.name
    caller.remote = '<sip:%s@example.com>' % callee.name
    req = caller.request('INVITE', 'sip:%s@%s' % (callee.name, addr),
                         body=caller.sdp)
    caller.send(req, addr)
    return req


@t.test
def backup_refuses_new_calls(ctx):
    caller, callee = two_uas(ctx)
    node1, node2 = lib.cluster(ctx, upstream(callee))

    req = invite(caller, callee, node2.sip_addr)
    resp = caller.final(req)
    assert resp and resp.status == 503, resp
    assert re.fullmatch(r'\d+', resp.header('Retry-After') or ''), \
        resp.header('Retry-After')
    assert int(resp.header('Retry-After')) <= 5
    assert not callee.requests_received(0.5), callee.pending
    assert node2.dialog_counts()['total'] == 0, node2.dialog_counts()
    m = hm.scrape(node2)
    assert m.value('rehome_calls_total') == 0, m.text

    call(node1.sip_addr, caller, callee)
    lib.wait_confirmed(node1, 1)
    assert h.wait_until(lambda: lib.replicas(node2) == 1, 5)
    assert unprotected(node1)['total'] == 0, unprotected(node1)
    assert 'not protected' not in node1.log(), node1.log_tail()


@t.test
def unprotected_is_shown(ctx):
    caller, callee = two_uas(ctx)
    node1, node2 = lib.cluster(ctx, upstream(callee))

    code, data = node1.ctl.post('/v1/shtags/%s/release' % TAG)
    assert code == 200, (code, data)
    call(node1.sip_addr, caller, callee)
    lib.wait_confirmed(node1, 1)
    assert node1.wait_log(r'new call in tag service served unprotected: '
                          r'nobody holds it'), node1.log_tail()

    state = unprotected(node1)
    assert (state['total'], state['tag_not_held']) == (1, 1), state
    m = hm.scrape(node1)
    assert m.value('rehome_dialogs_unprotected',
                   reason='tag_not_held') == 1, m.text
    assert node1.wait_log(r'warn .*1 dialogs served here are not '
                          r'protected .*tag_not_held 1', 3), \
        node1.log_tail()

    code, data = node1.ctl.post('/v1/shtags/%s/activate' % TAG)
    assert code == 200, (code, data)
    assert node1.wait_log(r'every dialog served here is protected again',
                          3), node1.log_tail()
    assert unprotected(node1)['total'] == 0, unprotected(node1)


t.main()
