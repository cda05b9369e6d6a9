"""redis_server.py  A throw-away redis-server, and a client to look into it.

The client is redis-py (Debian's python3-redis), decoding replies as
latin-1 so that any stored bytes come back as a str and go back in
unchanged.
"""

import os
import subprocess

import redis

from .common import ENGINE_IP, TestFailure, free_port, wait_until
from .procs import Proc


class Redis(Proc):
    """redis-server on ENGINE_IP (no persistence); .client is a
    redis.Redis connected to it. port: a given one (e.g. to start a new
    server where a stopped one was), default a free one; args: more
    redis-server arguments."""

    def __init__(self, workdir, name='redis', port=None, args=()):
        self.port = port or free_port()
        self.addr = '%s:%d' % (ENGINE_IP, self.port)
        self.client = redis.Redis(ENGINE_IP, self.port, socket_timeout=2,
                                  decode_responses=True,
                                  encoding='latin-1')
        super().__init__(name, [
            'redis-server', '--port', str(self.port), '--bind', ENGINE_IP,
            '--save', '', '--appendonly', 'no', '--dir', workdir,
            '--daemonize', 'no'] + list(args),
            os.path.join(workdir, name + '.log'))

    def start(self, timeout=10.0):
        super().start()
        if not wait_until(self._pong, timeout):
            raise TestFailure('redis-server not answering:\n' +
                              self.log_tail())
        return self

    def stop(self, timeout=5.0):
        self.client.close()
        return super().stop(timeout)

    def _pong(self):
        try:
            return self.client.ping()
        except redis.ConnectionError:
            return False


def cluster_create(workdir, masters, timeout=20.0):
    """Make started Redis servers, each run with cluster_args(), one Redis
    Cluster of masters only (redis-cli --cluster create, every slot
    assigned), and wait until each of them says cluster_state:ok."""
    argv = ['redis-cli', '--cluster', 'create'] + \
        [m.addr for m in masters] + ['--cluster-replicas', '0',
                                     '--cluster-yes']
    with open(os.path.join(workdir, 'redis-cluster-create.log'), 'w') as log:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log,
                           stderr=subprocess.STDOUT, timeout=timeout)
    if p.returncode != 0:
        raise TestFailure('redis-cli --cluster create: exit %d' %
                          p.returncode)

    def ok():
        return all(m.client.execute_command('CLUSTER', 'INFO')
                   .find('cluster_state:ok') >= 0 for m in masters)
    if not wait_until(ok, timeout):
        raise TestFailure('Redis Cluster not ok:\n' + masters[0].log_tail())
    return masters


def cluster_args(workdir, name):
    """redis-server arguments of one Redis Cluster node (cluster_create).
    The cluster bus port is drawn from REHOME_TEST_PORTS too: Redis's
    default, the port + 10000, may be taken (it falls in the ephemeral
    range), and then the node aborts at start."""
    return ['--cluster-enabled', 'yes', '--cluster-config-file',
            os.path.join(workdir, name + '-nodes.conf'),
            '--cluster-node-timeout', '2000',
            '--cluster-port', str(free_port())]
