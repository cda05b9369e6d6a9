"""test_redis_cluster.py  A Redis Cluster node named as `redis` is refused.

rehome does not place its keys for Redis Cluster yet (the keys of one
script would live on several masters), so a node pointed at one of three
masters of a Redis Cluster (harness: ctx.redis_cluster) must say so in
one error line, stay "down" and write nothing, instead of meeting MOVED
and CROSSSLOT replies one command at a time.
"""
import time

import harness as h
from harness import metrics as hm

t = h.Test(__file__)


@t.test
def redis_cluster_refused(ctx):
    masters = ctx.redis_cluster(3)
    node = ctx.rehomed(name='node1', node_id='node1',
                       redis=masters[0].addr, cluster='rhc',
                       repl_secret='test-secret-0123456789')
    assert node.wait_log(r'error redis +%s is a Redis Cluster node '
                         r'\(cluster_enabled:1\)' % masters[0].addr), \
        node.log()
    assert hm.scrape(node).value('rehome_redis_up') == 0
    # retried with backoff, logged once
    time.sleep(1.5)
    assert node.log().count('is a Redis Cluster node') == 1, node.log()
    assert [m.client.dbsize() for m in masters] == [0, 0, 0]


t.main()
