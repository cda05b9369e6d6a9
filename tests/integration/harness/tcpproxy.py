"""tcpproxy.py  A TCP proxy between a node and Redis that a test can cut.

Run as its own process (`python3 -m harness.tcpproxy LISTEN_PORT
TARGET_HOST:TARGET_PORT MAX_SECONDS`), so that a test stops it by its PID
like any other. SIGUSR1 cuts: from then on nothing is forwarded either
way, nor is a close passed on, and new connections are accepted but not
connected onward, as when a cable is pulled: both ends see silence, not a
reset. SIGUSR2 mends the cut: what was held back flows again, closes
included. The process ends by itself after MAX_SECONDS.

    proxy = TcpProxy(ctx.dir, redis.addr).start()
    node = ctx.rehomed(redis=proxy.addr, ...)
    proxy.cut(); ...; proxy.mend()
"""

import asyncio
import os
import signal
import sys

from .common import ENGINE_IP, free_port, port_bound, wait_until
from .procs import Proc

CHUNK = 65536


class TcpProxy(Proc):
    """The proxy as a child process on ENGINE_IP:port -> target."""

    def __init__(self, workdir, target, name='tcpproxy', max_seconds=600):
        self.port = free_port()
        self.addr = '%s:%d' % (ENGINE_IP, self.port)
        super().__init__(name, [
            sys.executable, '-m', 'harness.tcpproxy', str(self.port),
            target, str(max_seconds)],
            os.path.join(workdir, name + '.log'))

    def start(self, timeout=5.0):
        super().start()
        assert wait_until(lambda: port_bound(ENGINE_IP, self.port, 'tcp'),
                          timeout), self.log_tail()
        return self

    def cut(self):
        self.popen.send_signal(signal.SIGUSR1)

    def mend(self):
        self.popen.send_signal(signal.SIGUSR2)


# ------------------------------------------------------ the process itself

class _Cut:
    def __init__(self):
        self.open = asyncio.Event()
        self.open.set()


async def _pump(reader, writer, cut):
    try:
        while True:
            data = await reader.read(CHUNK)
            await cut.open.wait()
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        await cut.open.wait()
        writer.close()


async def _serve(port, host, tport, cut):
    async def client(creader, cwriter):
        await cut.open.wait()
        try:
            ureader, uwriter = await asyncio.open_connection(host, tport)
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(_pump(creader, uwriter, cut),
                             _pump(ureader, cwriter, cut))

    server = await asyncio.start_server(client, ENGINE_IP, port)
    async with server:
        await server.serve_forever()


def main(argv):
    port, target, max_seconds = int(argv[1]), argv[2], float(argv[3])
    host, _, tport = target.rpartition(':')
    loop = asyncio.new_event_loop()
    cut = _Cut()

    def on_cut():
        print('cut', flush=True)
        cut.open.clear()

    def on_mend():
        print('mended', flush=True)
        cut.open.set()

    loop.add_signal_handler(signal.SIGUSR1, on_cut)
    loop.add_signal_handler(signal.SIGUSR2, on_mend)
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    task = loop.create_task(_serve(port, host, int(tport), cut))
    loop.call_later(max_seconds, loop.stop)
    loop.run_forever()
    task.cancel()


if __name__ == '__main__':
    main(sys.argv)
