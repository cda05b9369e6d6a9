"""test_policy_simulate.py  Dry runs of policies on a live cluster.

- dry_run_changes_nothing: two nodes running policies/failover.lua (node1
  active for the tag, node2 backup), live calls through node1. On node2,
  POST /v1/policy/simulate and `rehomectl policy simulate` (human and
  --json) of "node1 down" report that node2 would re-home the tag's calls
  (with their count) and the policy's log line. A candidate file on node1
  sees node2 down in nodes() (it is up), and its take, release, move and
  INVITE decisions are reported with the dialogs they would touch. A
  candidate that does not load is refused with 422 and FILE:LINE, one that
  overruns its budget in the hook reports the error. Through all of it,
  nothing happens: Redis (keys, tag epochs and holders, dialogs) is
  unchanged, no endpoint gets a re-INVITE, no job runs, no dialog is
  created, the running policies report no error. Then node1 is killed and
  node2's running policy re-homes every call: it still acts.
- without_running_policy: a node without a policy dry-runs a candidate
  file; without a file the answer is 404.
"""
import json
import os

import harness as h
from harness import nodes as lib

t = h.Test(__file__)

CALLS = 5
POLICY = os.path.join(h.SRC, 'policies', 'failover.lua')

CANDIDATE = '''
local rehome = require "rehome"
return {
  on_node_down = function(node)
    for _, n in ipairs(rehome.nodes()) do
      if n.id == node then rehome.log("info", "sees " .. n.id .. " " .. n.state) end
    end
    rehome.take("service")
    rehome.release("service")
    rehome.move{tag = "service", to = node, percent = 40}
  end,
  on_initial_invite = function(req)
    if req.from_host == "acme.example" then
      return {shtag = "gold", target = "sip:pbx@127.0.0.20"}
    end
    return {reject = 403, reason = "Nope"}
  end,
}
'''

RUNAWAY = '''
return {
  on_node_down = function(node)
    rehome.take("service")
    while true do end
  end,
}
'''


def write(ctx, name, text):
    path = ctx.path(name)
    with open(path, 'w') as f:
        f.write(text)
    return path


def jobs(node):
    st, data = node.ctl.get('/v1/jobs')
    assert st == 200, data
    return data['jobs']


def simulate(rh, **body):
    return rh.ctl.post('/v1/policy/simulate', body)


def redis_state(client):
    """What a dry run must not change: every key but the heartbeats,
    with its value (tags: epoch and holder; dialogs: version, state)."""
    out = {}
    for key in client.keys('*'):
        if ':node:' in key:
            out[key] = None           # heartbeats: their values tick
        elif client.type(key) == 'hash':
            out[key] = client.hgetall(key)
        else:
            out[key] = client.get(key)
    return out


@t.test
def dry_run_changes_nothing(ctx):
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=CALLS, timeout=60)
    node1, node2 = lib.cluster(ctx, uas.target, policy=POLICY)
    redis, = [p for p in ctx.procs if isinstance(p, h.Redis)]
    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=node1.sip_addr,
                   calls=CALLS, rate=100, duration=20000, timeout=60)
    uas.start()
    uac.start()
    lib.wait_confirmed(node1, CALLS)
    assert h.wait_until(lambda: lib.replicas(node2) >= CALLS, 5)
    before = redis_state(redis.client)
    assert before['rh%d:shtags' % redis.port] == {'service': '1 node1'}, \
        before
    counts = [n.dialog_counts()['total'] for n in (node1, node2)]

    # the running failover policy, node1 down, seen from node2
    st, data = simulate(node2, file=None, event='node_down', node='node1')
    assert st == 200, (st, data)
    assert data['actions'] == [{'action': 'rehome', 'tag': 'service',
                                'mode': 'challenge', 'dialogs': CALLS}], data
    assert data['log'] == [{'level': 'info', 'msg': 'takeover: node1 is '
                            'down, taking tag service'}], data
    assert (data['policy'], data['node_id'], data['called']) == \
        (POLICY, 'node2', True), data
    rc, out, err = lib.rehomectl(node2, 'policy', 'simulate', 'node-down',
                                 'node1')
    assert rc == 0, (rc, out, err)
    assert 'rehome service, mode challenge: %d dialogs' % CALLS in out, out
    assert 'info: takeover: node1 is down, taking tag service' in out, out
    rc, out, err = lib.rehomectl(node2, '--json', 'policy', 'simulate',
                                 'node-down', 'node1')
    assert rc == 0 and json.loads(out)['actions'] == data['actions'], out

    # a candidate on node1, which owns the calls: node2 shown down
    path = write(ctx, 'candidate.lua', CANDIDATE)
    st, data = simulate(node1, file=path, event='node_down', node='node2')
    assert st == 200, (st, data)
    assert data['actions'] == [
        {'action': 'take', 'tag': 'service', 'dialogs': CALLS},
        {'action': 'release', 'tag': 'service', 'dialogs': CALLS},
        {'action': 'move', 'tag': 'service', 'to': 'node2', 'percent': 40,
         'dialogs': CALLS * 40 // 100}], data
    assert data['log'] == [{'level': 'info', 'msg': 'sees node2 down'}], data
    st, data = simulate(node1, file=path, event='invite', invite={
        'from': 'sip:alice@acme.example', 'to': 'sip:bob@example.org'})
    assert st == 200 and data['actions'] == [
        {'action': 'invite', 'shtag': 'gold', 'target': 'sip:pbx@127.0.0.20',
         'dialogs': 1}], (st, data)
    rc, out, err = lib.rehomectl(node1, 'policy', 'simulate', '--file', path,
                                 'invite', '--from', 'sip:eve@x.example',
                                 '--to', 'sip:bob@example.org')
    assert rc == 0 and 'invite, reject 403, reason Nope: 0 dialogs' in out, \
        (rc, out, err)

    # failures are reported like a load's
    bad = write(ctx, 'bad.lua', 'return {\n  on_node_down = ,\n}\n')
    st, data = simulate(node2, file=bad, event='node_down', node='node1')
    assert st == 422 and 'bad.lua:2:' in data['error'], (st, data)
    rc, out, err = lib.rehomectl(node2, 'policy', 'simulate', '--file', bad,
                                 'node-down', 'node1')
    assert rc == 1 and 'bad.lua:2:' in err, (rc, out, err)
    runaway = write(ctx, 'runaway.lua', RUNAWAY)
    st, data = simulate(node2, file=runaway, event='node_down', node='node1')
    assert st == 422, (st, data)
    assert data['error'].endswith('runaway.lua:5: instruction budget of '
                                  '1000000 exceeded'), data
    assert [a['action'] for a in data['actions']] == ['take'], data
    st, data = simulate(node2, event='node_down')
    assert st == 400, (st, data)

    # nothing happened
    assert redis_state(redis.client) == before
    for node in (node1, node2):
        assert jobs(node) == []
        assert lib.status(node)['policy'].get('last_error') is None
    assert [n.dialog_counts()['total'] for n in (node1, node2)] == counts
    assert lib.reinvites(uas) == [] and lib.reinvites(uac) == []

    # the running policy still acts
    lib.kill(ctx, node1)
    assert h.wait_until(lambda: [(j['tag'], j['state'], j['moved'])
                                 for j in jobs(node2)] ==
                        [('service', 'done', CALLS)], 10), jobs(node2)
    caller, callee = uac.result(), uas.result(timeout=10)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    assert len(lib.reinvites(uas)) == CALLS


@t.test
def without_running_policy(ctx):
    rh = ctx.rehomed()
    st, data = simulate(rh, event='tick')
    assert st == 404 and data['error'] == 'no policy configured', (st, data)
    path = write(ctx, 'candidate.lua', CANDIDATE)
    rc, out, err = lib.rehomectl(rh, 'policy', 'simulate', '--file', path,
                                 'invite', '--from', 'sip:a@acme.example',
                                 '--to', 'sip:bob@example.org', '--ruri',
                                 'sip:bob@127.0.0.20')
    assert rc == 0, (rc, out, err)
    assert 'invite, shtag gold, target sip:pbx@127.0.0.20: 1 dialog\n' in out
    assert rh.dialog_counts()['total'] == 0


t.main()
