"""test_cluster_tags.py  Who may take a sharing tag, and what it costs.

Two nodes on one Redis (lib.cluster: node_timeout 1000 ms), node1 active
for `service`, no calls needed.

- live_holder_keeps_tag: `rehome service` on node2 while node1 is alive
  is refused 409 (API and rehomectl, exit 1) and changes nothing; with
  `force` (API) / `--force` (rehomectl) it takes the tag and node1 steps
  down. Activating a tag this node holds already succeeds without a new
  epoch, and publishes nothing.
- dying_holder_waits: the holder is stopped (SIGSTOP), then `rehome` is
  asked once its heartbeats are overdue: the request waits until the
  holder is declared down and then takes the tag (202), without force.
"""
import signal
import time

import harness as h
from harness import nodes as lib

t = h.Test(__file__)

TAG = 'service'
NODE_TIMEOUT_S = 1.0


def tag_state(node):
    """(holder, epoch, active) of TAG as a node sees it."""
    for x in lib.status(node).get('shtags', []):
        if x.get('name') == TAG:
            return x.get('holder'), x.get('epoch'), x.get('active')
    return None, None, None


@t.test
def live_holder_keeps_tag(ctx):
    node1, node2 = lib.cluster(ctx, None)
    holder, epoch, active = tag_state(node1)
    assert (holder, active) == ('node1', True), tag_state(node1)

    code, data = node2.ctl.post('/v1/rehome', {'tag': TAG})
    assert code == 409, (code, data)
    assert 'node1' in str(data), data
    rc, out, err = lib.rehomectl(node2, 'rehome', TAG)
    assert rc == 1 and '409' in err and 'node1' in err, (rc, out, err)
    time.sleep(0.3)
    for node in (node1, node2):
        assert tag_state(node)[:2] == ('node1', epoch), tag_state(node)
    assert tag_state(node1)[2] and not tag_state(node2)[2]

    # the holder activates its own tag: success, same epoch, no message
    code, data = node1.ctl.post('/v1/shtags/%s/activate' % TAG)
    assert code == 200, (code, data)
    assert (data['active'], data['epoch'], data['holder']) == \
        (True, epoch, 'node1'), data
    code, data = node1.ctl.post('/v1/rehome', {'tag': TAG})
    assert code == 202, (code, data)
    time.sleep(0.3)
    for node in (node1, node2):
        assert tag_state(node)[:2] == ('node1', epoch), tag_state(node)

    # forced: node2 takes it, node1 steps down
    rc, out, err = lib.rehomectl(node2, 'rehome', TAG, '--force')
    assert rc == 0, (rc, out, err)
    assert h.wait_until(lambda: tag_state(node1) == ('node2', epoch + 1,
                                                     False), 3), \
        tag_state(node1)
    assert tag_state(node2) == ('node2', epoch + 1, True), tag_state(node2)
    assert node1.wait_log(r'service: stepped down to backup, node2 holds')

    # and back through the API's "force"
    code, data = node1.ctl.post('/v1/rehome', {'tag': TAG, 'force': True})
    assert code == 202, (code, data)
    assert h.wait_until(lambda: tag_state(node2) == ('node1', epoch + 2,
                                                     False), 3), \
        tag_state(node2)


@t.test
def dying_holder_waits(ctx):
    node1, node2 = lib.cluster(ctx, None)
    _, epoch, _ = tag_state(node2)

    node1.popen.send_signal(signal.SIGSTOP)
    try:
        stopped = time.monotonic()
        time.sleep(NODE_TIMEOUT_S * 0.6)     # heartbeats overdue
        # (a faster detection may have declared it down already: then
        # the rehome proceeds at once, which is as right)
        waited = lib.node_state(node2, 'node1') == 'up'
        code, data = node2.ctl.post('/v1/rehome', {'tag': TAG})
        took = time.monotonic() - stopped
        assert code == 202, (code, data)
        assert lib.node_state(node2, 'node1') == 'down'
        assert took < NODE_TIMEOUT_S + h.slow(1.0), (took, waited)
        assert tag_state(node2) == ('node2', epoch + 1, True), \
            tag_state(node2)
    finally:
        lib.kill(ctx, node1)


t.main()
