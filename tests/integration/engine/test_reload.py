"""test_reload.py  The configuration reloaded on a live node.

- sighup_applies_live_keys: log_level and rehome_rate changed in the file
  and SIGHUP: debug lines appear at once, a re-homing job started
  without a rate runs at the new one, and the log names both keys.
- sighup_keeps_the_listener: a changed listen line is reported as kept
  (it needs a restart); the new port is not opened and a call through
  the old listener still works.
- sighup_broken_file: a file that does not load is refused with its
  FILE:LINE in the log; the node keeps its configuration and serves
  calls.
- post_reload: POST /v1/reload answers the keys changed and kept; the new
  ctl_token is the one required from then on; a policy line naming
  another file loads it; a policy that does not load refuses the whole
  reload (422, its FILE:LINE; the log level stays); a broken file gets
  422 with FILE:LINE.
- policy_saved_in_two_halves: the policy file written in two halves
  100 ms apart (the first half alone a syntax error) is loaded once,
  whole: no failed reload is logged or counted.
"""
import os
import re
import signal
import time

import harness as h
from harness import nodes as lib

t = h.Test(__file__)


def rewrite(rh, *changes, append=()):
    """Edit rh's config file: (regex, replacement) pairs, lines added."""
    text = rh.conf_text
    for pattern, repl in changes:
        text, n = re.subn(pattern, repl, text, flags=re.M)
        assert n == 1, (pattern, text)
    text += ''.join(line + '\n' for line in append)
    rh.conf_text = text
    with open(rh.conf_path, 'w') as f:
        f.write(text)


def job_rate(rh):
    """The rate a re-homing job started without one runs at."""
    return lib.post_job(rh, '/v1/rehome', {'tag': 'service'})['rate']


def debug_status_lines(rh):
    return len(re.findall(r' debug ctl +GET /v1/status', rh.log()))


def sighup(rh, done):
    """SIGHUP; wait for the log line `done` (a regex) after it."""
    before = len(rh.log())
    os.kill(rh.pid, signal.SIGHUP)
    ok = h.wait_until(lambda: re.search(done, rh.log()[before:], re.M), 5)
    assert ok, 'no %r after SIGHUP:\n%s' % (done, rh.log_tail())
    return rh.log()[before:]


@t.test
def sighup_applies_live_keys(ctx):
    rh = ctx.rehomed(log_level='info')
    assert job_rate(rh) == 5000
    assert debug_status_lines(rh) == 0

    rewrite(rh, (r'^log_level info$', 'log_level debug'),
            append=['rehome_rate 250'])
    log = sighup(rh, r'reload: log_level changed')
    assert re.search(r' info  engine +SIGHUP: reloading .*%s$' %
                     re.escape(rh.conf_path), log, re.M), log
    assert 'reload: rehome_rate changed' in log, log
    assert 'needs a restart' not in log, log

    rh.ctl.get('/v1/status')
    assert h.wait_until(lambda: debug_status_lines(rh) == 1, 2), \
        rh.log_tail()
    assert job_rate(rh) == 250


@t.test
def sighup_keeps_the_listener(ctx):
    rh, uac, uas = ctx.proxied('uac.xml', 'uas.xml')
    new_port = h.free_port()
    rewrite(rh, (r'^listen udp:(\S+):\d+ ', r'listen udp:\g<1>:%d ' %
                 new_port))
    log = sighup(rh, r'reload: listen changed')
    assert re.search(r' warn  engine +reload: listen changed; it needs a '
                     r'restart, the running value is kept$', log, re.M), log

    assert not h.port_bound(h.ENGINE_IP, new_port), 'new port opened'
    caller, callee = h.run_pair(uac, uas)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()


@t.test
def sighup_broken_file(ctx):
    rh, uac, uas = ctx.proxied('uac.xml', 'uas.xml')
    lines = rh.conf_text.count('\n')
    rewrite(rh, (r'^log_level debug$', 'log_level warn'),
            append=['rehome_rate lots'])
    log = sighup(rh, r'reload refused')
    want = r"reload refused: %s:%d: rehome_rate: 'lots' is not a whole " \
        r"number \(the running configuration stays\)$" % (
            re.escape(rh.conf_path), lines + 1)
    assert re.search(want, log, re.M), log

    caller, callee = h.run_pair(uac, uas)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    assert ' debug ' in rh.log()[-2000:], 'log_level changed anyway'
    assert rh.alive()


POLICY = '''
return {
  on_tick = function() print("tick %s") end,
}
'''


@t.test
def post_reload(ctx):
    first = ctx.path('first.lua')
    other = ctx.path('other.lua')
    for path, name in ((first, 'first'), (other, 'other')):
        with open(path, 'w') as f:
            f.write(POLICY % name)
    rh = ctx.rehomed(policy=first)

    st, data = rh.ctl.post('/v1/reload')
    assert (st, data) == (200, {'changed': [], 'kept': []}), (st, data)

    rewrite(rh, (r'^node_id node1$', 'node_id node9'),
            (r'^ctl_token .*$', 'ctl_token new-token'),
            (r'^policy .*$', 'policy other.lua'),
            append=['rehome_rate 77', 'node_timeout 900'])
    st, data = rh.ctl.post('/v1/reload')
    restart = 'needs a restart'
    assert (st, data) == (200, {
        'changed': ['policy', 'ctl_token', 'rehome_rate'],
        'kept': [{'key': 'node_id', 'reason': restart},
                 {'key': 'node_timeout', 'reason': restart}]}), (st, data)
    assert rh.ctl.get('/v1/status')[0] == 401, 'old token still good'
    rh.ctl.token = 'new-token'
    st, data = rh.ctl.get('/v1/status')
    assert st == 200 and data['node_id'] == 'node1', (st, data)
    assert data['policy']['path'] == other, data['policy']
    assert rh.wait_log(r' lua +tick other$', 3), rh.log_tail()

    # a policy that does not load refuses the whole reload
    with open(other, 'w') as f:
        f.write('return {\n')
    rewrite(rh, (r'^log_level debug$', 'log_level warn'))
    st, data = rh.ctl.post('/v1/reload')
    assert st == 422 and data['error'].startswith(other + ':'), (st, data)
    before = len(rh.log())
    rh.ctl.get('/v1/status')
    assert h.wait_until(lambda: ' debug ctl ' in rh.log()[before:], 2), \
        'log level changed:\n' + rh.log_tail()
    rewrite(rh, (r'^log_level warn$', 'log_level debug'))

    rewrite(rh, append=['listen udp:127.0.0.1 tag=public'])
    lines = rh.conf_text.count('\n')
    st, data = rh.ctl.post('/v1/reload')
    assert st == 422, (st, data)
    assert data['error'].startswith('%s:%d: listen: ' % (rh.conf_path,
                                                          lines)), data
    assert rh.ctl.get('/v1/status')[0] == 200, 'token changed anyway'


def event_count(rh, event):
    return lib.metric(rh, 'rehome_policy_events_total{event="%s"}' % event)


@t.test
def policy_saved_in_two_halves(ctx):
    path = ctx.path('policy.lua')
    with open(path, 'w') as f:
        f.write(POLICY % 'v1')
    rh = ctx.rehomed(policy=path)
    assert rh.wait_log(r' lua +tick v1$', 3), rh.log_tail()
    loaded = event_count(rh, 'reload_ok')

    # the first half alone: policy.lua:3: unexpected symbol / 'end' expected
    text = 'print("loading v2")\n' + POLICY % 'v2'
    half = text.index('print("tick')
    with open(path, 'w') as f:
        f.write(text[:half])
        f.flush()
        time.sleep(0.1)
        f.write(text[half:])

    assert rh.wait_log(r' lua +tick v2$', 5), rh.log_tail()
    time.sleep(0.5)   # a second, late reload would show by now
    log = rh.log()
    assert log.count('loading v2') == 1, log
    assert 'not loaded' not in log, log
    assert event_count(rh, 'reload_failed') == 0
    assert event_count(rh, 'reload_ok') == loaded + 1
    assert 'last_error' not in lib.status(rh)['policy']


t.main()
