"""test_policy_fleet.py  The same policy everywhere: drift, cluster-wide reload.

Two nodes on one Redis, each running the policy its config names,
`current/policy.lua`; a release is deployed the way release tools do it:
a new directory swapped in for `current`. The file watch follows the old
directory and sees nothing, which is what a cluster-wide reload is for.

- drift_and_cluster_reload: node1 starts with policy A, node2 with B.
  Each node's status shows its policy's path, SHA-256 (as sha256sum
  computes it) and load time, /metrics its rehome_policy_info{hash} and
  load timestamp, and every node's status shows the other's hash
  (heartbeats carry it) and lists it in policy_drift; `rehomectl status`
  warns about it. The node_meta lines of a node's config show in the
  others' status and in their policies' rehome.nodes(); on_tick's stats
  carry the CPU share (stats.cpu). Then B is
  deployed on node1: node1 keeps running A (no event) until `rehomectl
  policy reload --cluster` on node2 reloads both and reports each node ok
  with hash B; the drift is gone on both nodes. Last, a broken file is
  deployed on node2: the cluster-wide reload (API, from node1) answers
  per node, node1 ok, node2 failed with the Lua error naming FILE:LINE
  and its old hash; rehomectl exits 1; node2 still runs B (status hash,
  last_error), no drift.
"""
import hashlib
import json
import os

import harness as h
from harness import nodes as lib

t = h.Test(__file__)

# on_node_up: what rehome.nodes() says of the node's node_meta; the
# first on_tick: the CPU share in the stats
POLICY = '''\
local rehome = require "rehome"
local ticked = false
return {
  on_node_up = function(id)
    for _, n in ipairs(rehome.nodes()) do
      if n.id == id then
        rehome.log("info", "meta of " .. id .. ": site=" .. n.meta.site)
      end
    end
  end,
  on_tick = function(stats)
    if ticked then return end
    ticked = true
    rehome.log("info", ("cpu share %.3f"):format(stats.cpu))
  end,
}
'''
POLICY_A = POLICY + '-- A\n'
POLICY_B = POLICY + '-- B\n'
BROKEN = 'return {on_tick = function() end  -- unfinished\n'


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def release(ctx, node, name, text):
    """Deploy `text` as release `name` of node: a new directory swapped
    in for `current` (the watched directory is the old one)."""
    new = ctx.path('%s/%s' % (node, name))
    os.makedirs(new)
    with open(os.path.join(new, 'policy.lua'), 'w') as f:
        f.write(text)
    cur = ctx.path('%s/current' % node)
    if os.path.exists(cur):
        os.rename(cur, new + '.old')
    os.rename(new, cur)
    return os.path.join(cur, 'policy.lua')


def peer_hash(node, other):
    for x in lib.status(node).get('nodes', []):
        if x.get('id') == other:
            return x.get('policy_hash')
    return None


def drift(node):
    return lib.status(node).get('policy_drift')


@t.test
def drift_and_cluster_reload(ctx):
    paths = {1: release(ctx, 'n1', 'a', POLICY_A),
             2: release(ctx, 'n2', 'b', POLICY_B)}
    node1, node2 = lib.cluster(ctx, 'udp:127.0.0.1:9', node_kw=lambda i: dict(
        policy=paths[i],
        extra=['node_timeout 1000', 'node_meta site site%d' % i,
               'node_meta rack r%d' % i]))

    st = lib.status(node1)['policy']
    assert st['hash'] == sha(POLICY_A) and st['loaded'], st
    assert st['path'] == paths[1] and st['loaded_at'] > 1.7e12, st
    assert lib.metric(node1, 'rehome_policy_info{path="%s",hash="%s"}' % (
        paths[1], sha(POLICY_A))) == 1
    assert lib.metric(node1, 'rehome_policy_loaded_timestamp_seconds') \
        == st['loaded_at'] // 1000

    assert h.wait_until(lambda: peer_hash(node1, 'node2') == sha(POLICY_B)
                        and peer_hash(node2, 'node1') == sha(POLICY_A), 5)
    assert peer_hash(node1, 'node1') == sha(POLICY_A)
    assert drift(node1) == ['node2'] and drift(node2) == ['node1']
    meta = {x['id']: x.get('meta') for x in lib.status(node2)['nodes']}
    assert meta == {'node1': {'site': 'site1', 'rack': 'r1'},
                    'node2': {'site': 'site2', 'rack': 'r2'}}, meta
    for node in (node1, node2):
        for i in (1, 2):
            assert node.wait_log(r'meta of node%d: site=site%d' % (i, i)), \
                node.log_tail()
    assert node1.wait_log(r'cpu share [01]\.\d{3}'), node1.log_tail()
    rc, out, err = lib.rehomectl(node1, 'status')
    assert rc == 0 and 'policy drift' in err and 'node2' in err, (rc, err)

    # B deployed on node1: no event, node1 still runs A
    release(ctx, 'n1', 'b', POLICY_B)
    assert not h.wait_until(
        lambda: lib.status(node1)['policy']['hash'] != sha(POLICY_A), 1.5)

    rc, out, err = lib.rehomectl(node2, '--json', 'policy', 'reload',
                                 '--cluster')
    assert rc == 0, (rc, out, err)
    reply = json.loads(out)
    assert reply['reloaded'] and reply['same'], reply
    got = {x['node']: (x['ok'], x['hash']) for x in reply['nodes']}
    assert got == {'node1': (True, sha(POLICY_B)),
                   'node2': (True, sha(POLICY_B))}, reply
    assert lib.status(node1)['policy']['hash'] == sha(POLICY_B)
    assert h.wait_until(lambda: drift(node1) == [] and drift(node2) == [],
                        5), (drift(node1), drift(node2))
    rc, out, err = lib.rehomectl(node1, 'status')
    assert rc == 0 and 'policy drift' not in err, err

    # a broken release on node2: reported per node, node2 keeps B
    release(ctx, 'n2', 'd', BROKEN)
    status, reply = node1.ctl.post('/v1/policy/reload', {'cluster': True})
    assert status == 200 and not reply['reloaded'], (status, reply)
    res = {x['node']: x for x in reply['nodes']}
    assert res['node1']['ok'] and res['node1']['hash'] == sha(POLICY_B)
    assert not res['node2']['ok'], reply
    assert res['node2']['hash'] == sha(POLICY_B), reply
    assert 'policy.lua:' in res['node2']['error'], reply
    st = lib.status(node2)['policy']
    assert st['hash'] == sha(POLICY_B) and st['loaded'], st
    assert 'policy.lua:' in st.get('last_error', ''), st
    assert drift(node1) == [] and drift(node2) == []
    rc, out, err = lib.rehomectl(node1, 'policy', 'reload', '--cluster')
    assert rc == 1 and 'node2' in out, (rc, out, err)

    # a node alone: its own result only
    status, reply = node2.ctl.post('/v1/policy/reload', {'cluster': False})
    assert status == 422, (status, reply)


t.main()
