"""test_policy_hooks.py  Lua policy hooks on a single node (no Redis).

- runaway_loop, error_raised, memory_bomb: an on_initial_invite that never
  ends (even wrapped in pcall), that raises an error, or that hoards
  memory past the limit: 50 sipp calls through rehomed all succeed at
  both ends (the default applies), every INVITE reached the callee, and
  the failure is shown in GET /v1/status (policy.last_error, with the
  policy's file:line) and in /metrics
  (rehome_policy_events_total{event="budget_exceeded"|"hook_error"}).
  error() fails every call; a hook that overran is held back for a while
  after it (event "hook_held"), so every INVITE of the runaway loop is
  either an overrun or held. The hoarding policy, stopped by the memory
  limit or the CPU time budget, whichever comes first, hoards on through
  after() callbacks and is loaded afresh once it fills half the limit.
- catastrophic_pattern, catastrophic_pattern_latency: a hook whose
  string.find backtracks for seconds in Lua's own matcher fails on the
  instruction budget (matcher steps count) like a runaway loop: 50 calls
  go through; an OPTIONS sent right behind the INVITE is answered within
  200 ms and the INVITE reaches the callee within 300 ms.
- reject_by_from_domain: a policy answers INVITEs from one From domain
  with 403 and its reason; the callee never sees them, no dialog is
  created, and a call from another domain goes through.
- shtag_in_dialogs: the tag a policy gives a call (not the default) is
  the call's tag in GET /v1/dialogs and in the status counts; the policy's
  rehome.dialogs{} shows the call with the same fields and values as GET
  /v1/dialogs; and the policy heard on_node_up for this node at start.
- reload: POST /v1/policy/reload and `rehomectl policy reload` load a
  valid edit; a syntax error is refused (HTTP 422 / exit 1, the Lua error
  in the answer and in policy.last_error) and the old policy keeps
  running with its variables; SIGHUP reloads; so does an edit renamed
  over the file in the watched directory, where a broken one is refused
  too. Which policy runs is read from the reason phrase it rejects a
  probe INVITE with.
"""
import hashlib
import os
import re
import signal
import socket
import time

import harness as h
from harness import nodes as lib

t = h.Test(__file__)

CALLS = 50


def write(path, text):
    """Write a file in one go (rename over), as deploy tools do."""
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.rename(tmp, path)


def write_in_place(path, text):
    with open(path, 'w') as f:
        f.write(text)


def policy_file(ctx, text, name='policy.lua'):
    path = ctx.path(name)
    write(path, text)
    return path


def event_count(rh, event):
    return lib.metric(rh, 'rehome_policy_events_total{event="%s"}' % event)


def last_error(rh):
    return lib.status(rh)['policy'].get('last_error')


def calls_through(ctx, text, rate=50):
    """50 calls through a rehomed running the failing policy `text`: all
    succeed at both ends (the default applies), every INVITE reached the
    callee, no dialog is left."""
    path = policy_file(ctx, text)
    rh, uac, uas = ctx.proxied('uac.xml', 'uas.xml',
                               engine={'policy': path},
                               caller={'calls': CALLS, 'rate': rate},
                               callee={'calls': CALLS})
    caller, callee = h.run_pair(uac, uas)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    assert len(callee.select('received', 'INVITE')) == CALLS
    assert h.wait_until(lambda: rh.active_dialogs() == 0, 5), \
        rh.dialog_counts()
    assert rh.alive()
    return rh


def calls_despite(ctx, text, event, error_re, held=False):
    """calls_through, and the failure in the status and metrics; held:
    the hook overruns and is held back between overruns."""
    rh = calls_through(ctx, text)
    err = last_error(rh)
    assert err and re.search(error_re, err), err
    failed, skipped = event_count(rh, event), event_count(rh, 'hook_held')
    if held:
        assert failed >= 1 and failed + skipped == CALLS, (failed, skipped)
        assert rh.wait_log(r'on_initial_invite held back for 1000 ms')
    else:
        assert (failed, skipped) == (CALLS, 0), (failed, skipped)
    return rh


@t.test
def runaway_loop(ctx):
    calls_despite(ctx, '''
return {
  on_initial_invite = function(req)
    while true do pcall(function() while true do end end) end
  end,
}
''', 'budget_exceeded',
        r'^on_initial_invite: .*policy\.lua:4: instruction budget of '
        r'1000000 exceeded$', held=True)


@t.test
def error_raised(ctx):
    rh = calls_despite(ctx, '''
return {
  on_initial_invite = function(req)
    error("no route for " .. req.to_user)
  end,
}
''', 'hook_error', r'^on_initial_invite: .*policy\.lua:4: no route for bob$')
    assert event_count(rh, 'budget_exceeded') == 0


@t.test
def memory_bomb(ctx):
    # One call may run out of CPU time before it fills the state (fresh
    # pages are slow, the more under a sanitizer): the policy hoards on
    # through after() callbacks, each a call of its own, 500 ms apart.
    rh = calls_through(ctx, '''
local hoard, more = {}, true
local function grab()
  while true do hoard[#hoard + 1] = string.rep("x", 1 << 20) .. #hoard end
end
return {
  on_initial_invite = function(req)
    for i = 1, more and 15 or 0 do rehome.after(500 * i, grab) end
    more = false
    grab()
  end,
}
''')
    assert rh.wait_log(r'loading .*policy\.lua afresh', 15), rh.log_tail()
    err = last_error(rh)
    assert re.search(r': (not enough memory|.*policy\.lua:4: CPU time '
                     r'budget of 100 ms exceeded)$', err), err
    assert event_count(rh, 'hook_held') >= 1
    overruns = (event_count(rh, 'hook_error') +
                event_count(rh, 'budget_exceeded'))
    assert overruns >= 2, overruns


# Lua's own matcher backtracks through some 10^9 steps on this: seconds
CATASTROPHIC = '''
return {
  on_initial_invite = function(req)
    local s = ("a"):rep(300) .. req.method
    if s:find("a*a*a*b") then return {reject = 500} end
  end,
}
'''


@t.test
def catastrophic_pattern(ctx):
    calls_despite(ctx, CATASTROPHIC, 'budget_exceeded',
                  r'^on_initial_invite: .*policy\.lua:5: instruction budget '
                  r'of 1000000 exceeded$', held=True)


def first_request(peer, timeout):
    """When (time.monotonic()) `peer` receives a request; None if none
    came within `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        peer.sock.settimeout(end - time.monotonic())
        try:
            data = peer.sock.recv(65535)
        except socket.timeout:
            break
        if h.SipMsg(data.decode('latin-1')).is_request:
            return time.monotonic()
    return None


@t.test
def catastrophic_pattern_latency(ctx):
    """While the hook runs, the node answers an OPTIONS sent right behind
    the INVITE within milliseconds, and the INVITE goes on with the
    default decision; twice, the hold-back after the first overrun
    passed in between."""
    callee = ctx.udp(h.CALLEE_IP)
    rh = ctx.rehomed(policy=policy_file(ctx, CATASTROPHIC),
                     upstream='udp:%s:%d' % (callee.ip, callee.port))
    caller, prober = ctx.udp(h.CALLER_IP), ctx.udp(h.CALLER_IP)
    for n in (1, 2):
        invite = caller.request('INVITE', 'sip:bob@%s' % rh.sip_addr)
        options = prober.request('OPTIONS', 'sip:%s' % rh.sip_addr)
        t0 = time.monotonic()
        caller.send(invite, rh.sip_addr)
        prober.send(options, rh.sip_addr)
        answers = prober.recv(2.0)
        answered = time.monotonic() - t0
        assert answers and answers[-1].status == 200, answers
        assert answered < h.slow(0.2), \
            'OPTIONS answered after %.3f s' % answered
        forwarded = first_request(callee, 2.0)
        assert forwarded is not None, 'the INVITE did not reach the callee'
        assert forwarded - t0 < h.slow(0.3), \
            'INVITE forwarded after %.3f s' % (forwarded - t0)
        assert event_count(rh, 'budget_exceeded') == n
        assert event_count(rh, 'hook_held') == 0
        time.sleep(1.2)


@t.test
def reject_by_from_domain(ctx):
    path = policy_file(ctx, '''
return {
  on_initial_invite = function(req)
    if req.from_host == "blocked.example" then
      return {reject = 403, reason = "Domain blocked"}
    end
  end,
}
''')
    rh, uac, uas = ctx.proxied('uac.xml', 'uas.xml',
                               engine={'policy': path})
    uas.start()
    resp = lib.Probe(ctx, rh).invite('sip:mallory@blocked.example')
    assert resp.start_line == 'SIP/2.0 403 Domain blocked', resp.start_line
    assert rh.dialog_counts()['total'] == 0, rh.dialog_counts()

    uac.start()
    caller, callee = uac.result(), uas.result(timeout=5)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    invites = callee.select('received', 'INVITE')
    assert len(invites) == 1, '%d INVITEs reached the callee' % len(invites)
    assert 'blocked.example' not in invites[0].raw
    sent = lib.metric(rh, 'rehome_sip_responses_sent_total{code="403"}')
    assert sent == 1, '403 counted %d times in /metrics' % sent
    assert last_error(rh) is None, last_error(rh)


@t.test
def shtag_in_dialogs(ctx):
    path = policy_file(ctx, '''
return {
  on_initial_invite = function(req)
    if req.from_user == "alice" then return {shtag = "gold"} end
  end,
  on_node_up = function(node) rehome.log("info", "up: " .. node) end,
  on_tick = function(stats)
    for _, d in ipairs(rehome.dialogs{tag = "gold"}) do
      rehome.log("info", table.concat({"dialog", d.did, d.callid, d.shtag,
        d.state, d.owner, tostring(d.replica), d.created,
        d.legs.caller.target, d.legs.callee.target}, " "))
    end
  end,
}
''')
    rh, uac, uas = ctx.proxied(
        'uac.xml', 'uas.xml', caller={'duration': 3000},
        engine={'policy': path, 'default_shtag': 'service',
                'shtags': {'service': 'active', 'gold': 'active'}})
    assert rh.wait_log(r' lua +up: node1$'), rh.log_tail()
    uas.start()
    uac.start()
    lib.wait_confirmed(rh, 1)
    st, data = rh.ctl.get('/v1/dialogs')
    assert st == 200, data
    assert [d['shtag'] for d in data['dialogs']] == ['gold'], data
    d = data['dialogs'][0]
    seen = ' '.join(str(v) for v in (
        d['did'], d['callid'], d['shtag'], d['state'], d['owner'],
        str(d['replica']).lower(), d['created'],
        d['legs']['caller']['target'], d['legs']['callee']['target']))
    assert rh.wait_log(r' lua +dialog %s$' % re.escape(seen), 3), \
        (seen, rh.log_tail())
    st, data = rh.ctl.get('/v1/dialogs?tag=service')
    assert st == 200 and data['dialogs'] == [], data
    by_tag = rh.dialog_counts()['by_shtag']
    assert by_tag.get('gold', {}).get('confirmed') == 1, by_tag
    caller, callee = uac.result(), uas.result(timeout=5)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()


def versioned(name):
    """A policy rejecting every INVITE with "<name> #<n>", n counting the
    INVITEs this load of it saw (its state survives failed reloads)."""
    return '''
local n = 0
return {
  on_initial_invite = function(req)
    n = n + 1
    return {reject = 488, reason = "%s #" .. n}
  end,
}
''' % name


BROKEN = '''
return {
  on_initial_invite = function(req)
    if req.from_host == "x" then return nil
  end,
}
'''
SYNTAX_ERROR = "policy.lua:5: unexpected symbol near ','"


@t.test
def reload(ctx):
    # The engine reads live/policy.lua; edits/policy.lua is a hard link
    # to it (the same file), written in place: that makes no event in the
    # watched directory live/, so only the explicit triggers load them.
    os.mkdir(ctx.path('live'))
    os.mkdir(ctx.path('edits'))
    live = ctx.path('live/policy.lua')
    real = ctx.path('edits/policy.lua')
    write(live, versioned('v1'))
    os.link(live, real)
    rh = ctx.rehomed(policy=live)
    probe = lib.Probe(ctx, rh)
    assert probe.reason() == 'v1 #1'

    write_in_place(real, versioned('v2'))
    time.sleep(0.5)
    assert probe.reason() == 'v1 #2', 'reloaded without being asked'

    ok_before = event_count(rh, 'reload_ok')
    st, data = rh.ctl.post('/v1/policy/reload')
    v2_hash = hashlib.sha256(versioned('v2').encode()).hexdigest()
    assert (st, data) == (200, {'reloaded': True, 'policy': live,
                                'hash': v2_hash}), (st, data)
    assert probe.reason() == 'v2 #1'
    assert probe.reason() == 'v2 #2'
    assert event_count(rh, 'reload_ok') == ok_before + 1

    write_in_place(real, BROKEN)
    st, data = rh.ctl.post('/v1/policy/reload')
    assert st == 422, (st, data)
    assert data['error'].endswith(SYNTAX_ERROR), data
    assert last_error(rh) == data['error'], last_error(rh)
    assert probe.reason() == 'v2 #3', 'old policy or its state lost'
    rc, out, err = lib.rehomectl(rh, 'policy', 'reload')
    assert rc == 1, (rc, out, err)
    assert SYNTAX_ERROR in out + err, (out, err)
    assert event_count(rh, 'reload_failed') == 2
    assert probe.reason() == 'v2 #4'

    write_in_place(real, versioned('v3'))
    rc, out, err = lib.rehomectl(rh, 'policy', 'reload')
    assert rc == 0, (rc, out, err)
    assert probe.reason() == 'v3 #1'
    assert last_error(rh) is None, last_error(rh)

    write_in_place(real, versioned('v4'))
    os.kill(rh.pid, signal.SIGHUP)
    assert h.wait_until(lambda: probe.reason() == 'v4 #1', 3), \
        rh.log_tail()
    assert rh.wait_log(r'SIGHUP: reloading')

    # an edit of the file the engine reads, renamed over it
    write(live, versioned('v5'))
    assert h.wait_until(lambda: probe.reason().startswith('v5 #'), 3), \
        rh.log_tail()
    write(live, BROKEN)
    assert h.wait_until(lambda: event_count(rh, 'reload_failed') == 3, 3)
    assert (last_error(rh) or '').endswith(SYNTAX_ERROR), last_error(rh)
    assert probe.reason().startswith('v5 #')
    assert rh.alive()


t.main()
