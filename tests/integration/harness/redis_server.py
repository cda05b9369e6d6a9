"""redis_server.py  A throw-away redis-server, and a client to look into it.

The client is redis-py (Debian's python3-redis), decoding replies as
latin-1 so that any stored bytes come back as a str and go back in
unchanged.
"""

import os

import redis

from .common import ENGINE_IP, TestFailure, free_port, wait_until
from .procs import Proc


class Redis(Proc):
    """redis-server on ENGINE_IP (no persistence); .client is a
    redis.Redis connected to it. port: a given one (e.g. to start a new
    server where a stopped one was), default a free one."""

    def __init__(self, workdir, name='redis', port=None):
        self.port = port or free_port()
        self.addr = '%s:%d' % (ENGINE_IP, self.port)
        self.client = redis.Redis(ENGINE_IP, self.port, socket_timeout=2,
                                  decode_responses=True,
                                  encoding='latin-1')
        super().__init__(name, [
            'redis-server', '--port', str(self.port), '--bind', ENGINE_IP,
            '--save', '', '--appendonly', 'no', '--dir', workdir,
            '--daemonize', 'no'], os.path.join(workdir, name + '.log'))

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
