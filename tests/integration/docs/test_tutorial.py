"""test_tutorial.py  docs/tutorial.md works as written.

The tutorial's commands are its ```sh blocks (```text blocks show output
and are not run). This test joins them, in order, into one script and runs
it with `bash -e` from a directory that looks like the top of the source
tree (conf/, policies/, lua/ linked to the real ones, build/rehomed and
build/rehomectl linked to the binaries under test), with TMPDIR set to the
test's directory so that the tutorial's `mktemp` work directory lands
there. Nothing is substituted: the tutorial uses fixed ports (PORTS
below), which must be free before it runs.

What the tutorial promises, checked on what the phones and nodes saw:
node 1 serves the call; after node 1 is killed, node 2 re-homes it on its
own (the fail-over policy: one moved, none failed); both phones stay in
the call (each got the re-INVITE as a new SDP offer and neither saw the
call close before the hang-up); the BYE reaches bob, closed by his peer,
and is received by node 2; and every process the tutorial started has
stopped by its end.

Bounded by TIMEOUT; whatever is still running afterwards (the PIDs the
tutorial saved in its work directory, then the script's own process
group) is stopped by PID.
"""
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import harness as h

t = h.Test(__file__)

TUTORIAL = os.path.join(h.SRC, 'docs', 'tutorial.md')
TIMEOUT = 120

# (transport, ip, port) the tutorial binds
PORTS = [('tcp', '127.0.0.1', 16379)] + \
    [(tp, ip, 15060) for tp in ('udp', 'tcp')
     for ip in ('127.0.0.1', '127.0.0.2')] + \
    [('tcp', ip, 18060) for ip in ('127.0.0.1', '127.0.0.2')] + \
    [(tp, ip, port) for tp in ('udp', 'tcp')
     for ip, port in (('127.0.0.10', 15070), ('127.0.0.20', 15080))] + \
    [('tcp', ip, port + 1) for ip, port in (('127.0.0.10', 15070),
                                            ('127.0.0.20', 15080))] + \
    [('tcp', ip, 14444) for ip in ('127.0.0.10', '127.0.0.20')]


def sh_blocks(text):
    """The bodies of the ```sh fenced blocks, in order."""
    return re.findall(r'^```sh\n(.*?)^```$', text, re.M | re.S)


def source_tree(ctx):
    """A directory laid out like the source tree, with the binaries under
    test where the tutorial expects them."""
    root = ctx.path('tree')
    os.makedirs(os.path.join(root, 'build'))
    for name in ('conf', 'policies', 'lua'):
        os.symlink(os.path.join(h.SRC, name), os.path.join(root, name))
    os.symlink(h.REHOMED, os.path.join(root, 'build', 'rehomed'))
    os.symlink(h.REHOMECTL, os.path.join(root, 'build', 'rehomectl'))
    return root


def in_use(tp, ip, port):
    """True if a socket holds ip:port; for TCP one left in TIME-WAIT by
    a previous run does not count (the servers bind with SO_REUSEADDR)."""
    kind = socket.SOCK_DGRAM if tp == 'udp' else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET, kind)
    try:
        if tp == 'tcp':
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Script:
    """The tutorial's commands in one bash, in a session of its own; stop()
    ends what it left running, by PID."""

    def __init__(self, ctx, text):
        self.ctx = ctx
        self.path = ctx.path('tutorial.sh')
        with open(self.path, 'w') as f:
            f.write('\n'.join(sh_blocks(text)))
        self.out_path = ctx.path('tutorial.out')
        self.popen = None

    def run(self, cwd):
        env = dict(os.environ, TMPDIR=self.ctx.dir)
        env.pop('REHOME_TOKEN', None)
        env.setdefault('ASAN_OPTIONS', 'detect_leaks=1')
        with open(self.out_path, 'wb') as out:
            self.popen = subprocess.Popen(
                ['bash', '-e', self.path], cwd=cwd, env=env,
                stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return self.popen.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            return None

    def output(self):
        return h.read_text(self.out_path)

    def workdir(self):
        """The tutorial's $T."""
        found = glob.glob(self.ctx.path('rehome-tutorial.*'))
        assert len(found) == 1, 'work directories: %s' % found
        return found[0]

    def saved_pids(self):
        pids = {}
        for path in glob.glob(self.ctx.path('rehome-tutorial.*/*.pid')):
            name = os.path.basename(path)[:-len('.pid')]
            pids[name] = int(h.read_text(path).strip())
        return pids

    def stop(self):
        for pid in self.saved_pids().values():
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if not pid_alive(pid):
                    break
                os.kill(pid, sig)
                h.wait_until(lambda: not pid_alive(pid), 3)
        if self.popen is None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait()


def events(path):
    """ctrl_tcp's netstrings ("LEN:JSON,") in that file: the events."""
    data = open(path, 'rb').read()
    found = []
    while b':' in data:
        length, _, rest = data.partition(b':')
        msg = json.loads(rest[:int(length)])
        data = rest[int(length) + 1:]
        if msg.get('event'):
            found.append(msg)
    return found


def check_phone(name, evs, offers, closed_by):
    """The phone's call: established, then `offers` SDP offers in all
    (the re-home's re-INVITE included), then closed once, as closed_by."""
    kinds = [e['type'] for e in evs]
    assert 'CALL_ESTABLISHED' in kinds, '%s: %s' % (name, kinds)
    closes = [i for i, k in enumerate(kinds) if k == 'CALL_CLOSED']
    assert len(closes) == 1, '%s closed %d times: %s' % (name, len(closes),
                                                        kinds)
    got = [e for e in evs[:closes[0]]
           if e['type'] == 'CALL_REMOTE_SDP' and e.get('param') == 'offer']
    assert len(got) == offers, \
        '%s: %d SDP offers before the hang-up, not %d (no re-INVITE from ' \
        'node 2?): %s' % (name, len(got), offers, kinds)
    assert kinds.index('CALL_ESTABLISHED') < closes[0], kinds
    param = evs[closes[0]].get('param')
    assert param == closed_by, '%s: call closed with "%s", not "%s"' % (
        name, param, closed_by)


@t.test
def tutorial(ctx):
    text = h.read_text(TUTORIAL)
    assert len(sh_blocks(text)) >= 8, 'no ```sh blocks in %s' % TUTORIAL
    for tool in ('bash', 'redis-server', 'baresip', 'curl'):
        assert shutil.which(tool), '%s is not installed' % tool
    for tp, ip, port in PORTS:
        assert str(port) in text, 'port %d is not in the tutorial' % port
        assert not in_use(tp, ip, port), \
            'the tutorial needs %s %s:%d, which is in use' % (tp, ip, port)

    script = Script(ctx, text)
    ctx.procs.append(script)
    started = time.monotonic()
    rc = script.run(source_tree(ctx))
    out = script.output()
    assert rc is not None, 'still running after %ds:\n%s' % (TIMEOUT, out)
    assert rc == 0, 'exit status %d after %.0fs:\n%s' % (
        rc, time.monotonic() - started, out)

    wd = script.workdir()
    node1 = h.read_text(os.path.join(wd, 'node1.log'))
    node2 = h.read_text(os.path.join(wd, 'node2.log'))
    assert re.search(r'confirmed\s+service\s+node1\s', out), \
        'node 1 never served the call:\n' + out
    assert 'node node1 left (its redis connection closed)' in node2, node2
    assert '1 moved, 0 failed' in node2, 'node 2 did not re-home the ' \
        'call:\n' + node2
    assert re.search(r'^rehome_sip_requests_received_total\{method="BYE"\} '
                     r'1$', out, re.M), 'node 2 got no BYE:\n' + out

    check_phone('alice', events(os.path.join(wd, 'alice.events')), 1,
                'Connection reset by user')
    check_phone('bob', events(os.path.join(wd, 'bob.events')), 2,
                'Connection reset by peer')

    for name, log in (('node1', node1), ('node2', node2)):
        marks = [ln for ln in log.splitlines()
                 if any(m in ln for m in h.SANITIZER_MARKS)]
        assert not marks, '%s: %s' % (name, marks)
    assert 'stopping' in node2, 'node 2 did not stop cleanly:\n' + node2
    left = [name for name, pid in script.saved_pids().items()
            if pid_alive(pid)]
    assert not left, 'still running after the tutorial: %s' % left


t.main()
