"""test_policy_state.py  A policy's state across reloads (on_unload, on_load).

- ratelimit_survives_reload: a policy admits INVITEs through the shipped
  rate limiter (lua/ratelimit.lua: a burst of 5, next to no refill) and
  hands its bucket to the next version. 3 INVITEs are admitted by v1; the
  file is reloaded (POST /v1/policy/reload) in the middle of the burst;
  v2 admits only the 2 left and refuses the next: the reload did not give
  it a fresh burst. A version that cannot take the state (its on_load
  fails) is refused with FILE:LINE and v2 keeps running with its bucket;
  a version edited in the watched file gets it too.
"""
import os

import harness as h
from harness import nodes as lib

t = h.Test(__file__)

LIMITER = '''
local rehome = require "rehome"
local ratelimit = require "ratelimit"

local VERSION = "%s"
local function bucket(state)
  return ratelimit.new{rate = 0.001, burst = 5, state = state}
end
local b = bucket()

return {
  on_load = function(state)
    if state then b = bucket(state.bucket) end
    %s
  end,
  on_unload = function() return {bucket = b:state()} end,
  on_initial_invite = function(req)
    if b:take(1, rehome.now()) < 1 then
      return {reject = 503, reason = VERSION .. " over budget"}
    end
    return {reject = 486, reason = VERSION .. " admitted"}
  end,
}
'''


def write(path, version, extra=''):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(LIMITER % (version, extra))
    os.rename(tmp, path)


@t.test
def ratelimit_survives_reload(ctx):
    os.mkdir(ctx.path('live'))
    os.symlink(os.path.join(h.SRC, 'lua'), ctx.path('lua'))  # ../lua
    path = ctx.path('live/policy.lua')
    write(path, 'v1')
    rh = ctx.rehomed(policy=path)
    probe = lib.Probe(ctx, rh)
    assert [probe.reason() for _ in range(3)] == ['v1 admitted'] * 3

    write(path, 'v2')
    st, data = rh.ctl.post('/v1/policy/reload')
    assert st == 200, (st, data)
    assert [probe.reason() for _ in range(3)] == [
        'v2 admitted', 'v2 admitted', 'v2 over budget']

    # a version that cannot take the state: refused, v2 and its bucket stay
    write(path, 'v3', 'error("cannot take it")')
    assert h.wait_until(lambda: (lib.status(rh)['policy'].get('last_error')
                                 or '').endswith(
        'policy.lua:14: cannot take it'), 3), lib.status(rh)
    st, data = rh.ctl.post('/v1/policy/reload')
    assert st == 422 and data['error'].endswith(
        'policy.lua:14: cannot take it'), (st, data)
    assert probe.reason() == 'v2 over budget'

    # an edit picked up by the file watch gets the state as well
    write(path, 'v4')
    assert h.wait_until(lambda: probe.reason() == 'v4 over budget', 3), \
        rh.log_tail()
    assert lib.status(rh)['policy'].get('last_error') is None


t.main()
