"""test_ops.py  What an operator sees: log lines, the log level, rehomed -t.

Log lines on stderr start with an ISO 8601 date and time and carry no
colour when stderr is not a terminal (a file here), libre's own lines
included; on a terminal (a pty) the levels are coloured. With log_target
syslog, each line reaches /dev/log with the syslog priority of its level:
rehomed runs in its own mount namespace whose /dev/log is this test's
socket (needs root and unshare, as CI has). POST /v1/log_level
changes what is logged at once. `rehomed -t` loads the policy the file
names and reports a broken one as FILE:LINE. Every line about a call
carries its did and the caller's Call-ID, the same on each: one call at
debug level, and every line naming its Call-ID or its did names both.
"""
import os
import pty
import re
import select
import shutil
import socket
import subprocess
import time

import harness as h

t = h.Test(__file__)

ISO_LINE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d '
                      r'(debug|info |warn |error) \S+ +')
GARBAGE = 'garbage\r\n\r\n'   # libre prints "sip: msg decode err" for it


def status_seen(rh):
    """Count of the debug lines a GET /v1/status leaves in the log."""
    return len(re.findall(r'debug ctl +GET /v1/status', rh.log()))


@t.test
def log_lines_iso_plain(ctx):
    rh = ctx.rehomed(log_level='debug')
    status, _ = rh.ctl.get('/v1/status')
    assert status == 200
    ctx.udp().send(GARBAGE, rh.sip_addr)
    assert rh.wait_log(r' warn  stderr  sip: msg decode err'), \
        'libre\'s line not logged:\n' + rh.log_tail()
    assert rh.stop() == 0

    log = rh.log()
    assert '\x1b' not in log, 'escape byte in a log that is a file'
    lines = log.splitlines()
    assert len(lines) > 5, log
    bad = [ln for ln in lines if not ISO_LINE.match(ln)]
    assert not bad, 'lines without an ISO 8601 date: %r' % bad[:5]


@t.test
def log_colour_on_a_terminal(ctx):
    rh = h.Rehomed(ctx.dir, log_level='debug')   # started here, on a pty
    master, slave = pty.openpty()
    proc = subprocess.Popen([h.REHOMED, '-c', rh.conf_path],
                            stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=slave)
    os.close(slave)
    out = b''
    try:
        deadline = time.monotonic() + 10
        sent = False
        while time.monotonic() < deadline and b'decode err' not in out:
            if select.select([master], [], [], 0.2)[0]:
                out += os.read(master, 65536)
            if not sent and b'running' in out:
                ctx.udp().send(GARBAGE, rh.sip_addr)
                sent = True
    finally:
        proc.terminate()
        proc.wait(5)
        os.close(master)
    assert b'\x1b[33mwarn \x1b[0m stderr  sip: msg decode err' in out, out
    assert re.search(rb'^\d{4}-\d\d-\d\dT', out, re.M), out


@t.test
def log_level_at_run_time(ctx):
    rh = ctx.rehomed(log_level='info')
    assert rh.ctl.get('/v1/status')[0] == 200
    assert status_seen(rh) == 0, 'debug line at level info'

    status, data = rh.ctl.post('/v1/log_level', {'level': 'debug'})
    assert (status, data) == (200, {'level': 'debug'}), (status, data)
    assert rh.wait_log(r' info  engine  log level debug$')
    rh.ctl.get('/v1/status')
    assert h.wait_until(lambda: status_seen(rh) == 1, 2), rh.log_tail()

    status, data = rh.ctl.post('/v1/log_level', {'level': 'warn'})
    assert status == 200, data
    rh.ctl.get('/v1/status')
    ctx.udp().send(GARBAGE, rh.sip_addr)   # a warning: still logged
    assert rh.wait_log(r'stderr  sip: msg decode err')
    assert status_seen(rh) == 1, 'debug line at level warn'
    assert 'log level warn' not in rh.log(), 'info line at level warn'

    for body in ({'level': 'loud'}, {'lvl': 'debug'}, None):
        status, data = rh.ctl.post('/v1/log_level', body)
        assert status == 400 and 'error' in data, (body, status, data)

    rh.ctl.token = 'wrong'
    assert rh.ctl.post('/v1/log_level', {'level': 'debug'})[0] == 401
    rh.ctl.token = rh.token
    rh.ctl.get('/v1/status')
    time.sleep(0.2)
    assert status_seen(rh) == 1, 'level changed without the token'


def syslog_socket(ctx):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(ctx.path('log'))
    return sock


def in_own_dev(ctx, rh):
    """rh's command run with /dev a tmpfs holding null and log (our socket),
    in a private mount namespace; None if this host does not allow it."""
    if not shutil.which('unshare') or os.geteuid() != 0:
        return None
    script = ('mount -t tmpfs tmpfs /dev && '
              'mknod -m 666 /dev/null c 1 3 && '
              'mknod -m 666 /dev/urandom c 1 9 && '
              'ln -s "$0" /dev/log && exec "$@"')
    argv = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
            script, ctx.path('log')] + rh.argv
    probe = subprocess.run(argv[:-3] + ['true'], capture_output=True)
    return argv if probe.returncode == 0 else None


@t.test
def syslog_priorities(ctx):
    sock = syslog_socket(ctx)
    rh = h.Rehomed(ctx.dir, log_level='debug', extra=['log_target syslog'])
    argv = in_own_dev(ctx, rh)
    # CI runs as root with unshare(1): no namespace is a failure, not a skip
    assert argv, 'no private mount namespace here (needs root and unshare)'
    rh.argv = argv
    ctx.procs.append(rh)
    h.Proc.start(rh)   # not Rehomed.start: its log file stays empty

    got = []
    sock.settimeout(0.5)
    deadline = time.monotonic() + 10
    sent = False
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(65536).decode('utf-8', 'replace'))
        except socket.timeout:
            pass
        text = '\n'.join(got)
        if not sent and "node 'node1' running" in text:
            ctx.udp().send(GARBAGE, rh.sip_addr)
            rh.ctl.get('/v1/status')
            sent = True
        if 'decode err' in text and 'GET /v1/status' in text:
            break
    text = '\n'.join(got)

    # <facility daemon (3) * 8 + severity> ... rehomed[PID]: MODULE: text
    def prio(pattern):
        m = re.search(r'^<(\d+)>.*rehomed\[\d+\]: ' + pattern, text, re.M)
        return int(m.group(1)) if m else None

    assert prio(r"main: rehomed .* node 'node1' running") == 24 + 6, text
    assert prio(r'stderr: sip: msg decode err') == 24 + 4, text
    assert prio(r'ctl: GET /v1/status') == 24 + 7, text
    assert "running" not in rh.log(), 'logged to stderr as well'
    sock.close()


@t.test
def call_lines_carry_did(ctx):
    rh, uac, uas = ctx.proxied('uac.xml', 'uas.xml',
                               engine={'log_level': 'debug'})
    caller, callee = h.run_pair(uac, uas)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    assert h.wait_until(lambda: rh.active_dialogs() == 0, 5), \
        rh.dialog_counts()
    assert rh.ctl.get('/v1/status')[0] == 200   # the log is up to date

    call_id = caller.select('sent', 'INVITE')[0].call_id
    log = rh.log().splitlines()
    lines = [ln for ln in log if call_id in ln]
    m = re.search(r' did=([0-9a-f]{16}) callid=%s: ' % re.escape(call_id),
                  lines[0] if lines else '')
    assert m, 'no did on the call\'s first line: %r' % lines[:1]
    prefix = 'did=%s callid=%s: ' % (m.group(1), call_id)
    bad = [ln for ln in lines if prefix not in ln]
    assert not bad, 'lines without "%s": %r' % (prefix, bad)
    story = [ln for ln in log if 'did=' + m.group(1) in ln]
    assert story == lines, (story, lines)
    told = [ln.split(prefix, 1)[1] for ln in lines]
    assert told[0] == 'early, tag service', told
    assert told[1].startswith('INVITE from %s:' % h.CALLER_IP), told
    assert told[2:] == ['confirmed', 'ended'], told


def linked_with_libsystemd():
    res = subprocess.run(['ldd', h.REHOMED], capture_output=True, text=True)
    return 'libsystemd' in res.stdout


@t.test
def systemd_notify(ctx):
    """Type=notify as systemd runs it: $NOTIFY_SOCKET, $WATCHDOG_USEC."""
    # install-deps installs libsystemd-dev: a build without it is a failure
    assert linked_with_libsystemd(), 'rehomed built without libsystemd'
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(ctx.path('notify'))
    sock.settimeout(0.1)
    rh = h.Rehomed(ctx.dir)
    rh.env.update(NOTIFY_SOCKET=ctx.path('notify'), WATCHDOG_USEC='400000')
    ctx.procs.append(rh)
    rh.start()

    def received(seconds):
        got, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                got.append(sock.recv(4096).decode())
            except socket.timeout:
                pass
        return got

    got = received(1.0)
    assert got and got[0] == 'READY=1', got
    pings = got.count('WATCHDOG=1')
    assert 3 <= pings <= 8, 'a 400 ms watchdog wants a ping every 200 ms, ' \
        'got %d in 1 s' % pings
    assert rh.wait_log(r'systemd watchdog: a ping every 200 ms')

    rh.popen.terminate()
    assert rh.wait(5) == 0
    assert 'STOPPING=1' in received(0.3), 'no STOPPING=1'
    sock.close()


def check(ctx, conf_text, policy_name=None, policy_text=None):
    """rehomed -t on a config (and a policy file beside it)."""
    if policy_name:
        with open(ctx.path(policy_name), 'w') as f:
            f.write(policy_text)
    conf = ctx.path('check.conf')
    with open(conf, 'w') as f:
        f.write(conf_text)
    return subprocess.run([h.REHOMED, '-t', '-c', conf], capture_output=True,
                          text=True, timeout=10)


@t.test
def check_loads_the_policy(ctx):
    port = h.free_port()
    base = 'listen udp:127.0.0.1:%d tag=public\nctl_token x\n' % port

    good = check(ctx, base + 'policy %s/policies/failover.lua\n' % h.SRC)
    assert good.returncode == 0, good.stderr
    assert 'configuration ok, policy ' in good.stdout, good.stdout

    cases = [
        ('syntax.lua', 'return {\n  on_tick = function()\n    x = \n  end\n}\n',
         r'syntax\.lua:4: unexpected symbol near \'end\''),
        ('runtime.lua', 'local a = 1\nerror("boom")\nreturn {}\n',
         r'runtime\.lua:2: boom'),
        ('require.lua', 'local m = require "no_such_module"\nreturn {}\n',
         r"require\.lua:1: module 'no_such_module' not found"),
        ('hook.lua', 'return {on_node_dwon = function() end}\n',
         r'hook\.lua.*on_node_dwon'),
        ('number.lua', 'return 42\n',
         r'number\.lua: a policy must return a table of hooks'),
    ]
    for name, text, want in cases:
        res = check(ctx, base + 'policy %s\n' % name, name, text)
        assert res.returncode == 1, (name, res.stdout, res.stderr)
        assert re.search(want, res.stderr), (name, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert 'configuration ok' not in res.stdout, res.stdout

    nothing = subprocess.run([h.REHOMED, '-t', '-c', ctx.path('none.conf')],
                             capture_output=True, text=True, timeout=10)
    assert nothing.returncode == 1 and 'none.conf' in nothing.stderr


t.main()
