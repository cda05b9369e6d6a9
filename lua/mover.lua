--- mover: paced rehome.move calls from this node to others.
--
-- Used by policies that move live calls for load reasons (rebalance,
-- drain). A token bucket caps how many calls per second leave this node,
-- and a new batch only starts once every move of the previous one has
-- reported (or `stale_ms` passed without a report), so a slow cluster is
-- never handed more work than it finishes.
--
--   local mv = require("mover").new{rehome = rehome, rate = 20}
--   if mv:idle() then mv:move(mover.fullest_tag(stats), "n2", 15) end

local ratelimit = require "ratelimit"

local M = {}
local Mover = {}
Mover.__index = Mover

--- The tag with the most calls on this node in on_tick's stats, or nil.
function M.fullest_tag(stats)
  local best, most = nil, 0
  for name, t in pairs(stats and stats.tags or {}) do
    local calls = t.calls or 0
    if calls > most or (calls == most and best and name < best) then
      best, most = name, calls
    end
  end
  return best, most
end

--- opts: rehome (module), rate (calls per second, default 20), burst,
-- stale_ms (default 30000), state (what mv:state() returned before a
-- reload: the pace goes on from there).
function M.new(opts)
  assert(opts and opts.rehome, "mover.new needs the rehome module")
  local rate = opts.rate or 20
  local state = opts.state or {}
  return setmetatable({
    rehome = opts.rehome,
    bucket = ratelimit.new{rate = rate, burst = opts.burst or rate,
                           state = state.bucket},
    stale_ms = opts.stale_ms or 30000,
    inflight = 0,
    since = 0,
  }, Mover)
end

--- The pace as plain data, for new{state=} in the next version of the
-- policy (moves still waiting for their report are not: their done
-- functions go with the old version).
function Mover:state()
  return {bucket = self.bucket:state()}
end

--- True when no move of this mover is waiting for its report.
function Mover:idle()
  if self.inflight > 0 and self.rehome.now() - self.since > self.stale_ms then
    self.rehome.log("warn", "mover: no report for a move, going on")
    self.inflight = 0
  end
  return self.inflight == 0
end

--- Move up to `wanted` calls of `tag` to node `to`, as far as the pace
-- allows now. Returns the number of calls asked to move (0: none).
function Mover:move(tag, to, wanted)
  local rehome = self.rehome
  if not tag or wanted <= 0 then return 0 end

  local n = self.bucket:take(wanted, rehome.now())
  if n <= 0 then return 0 end

  local ok, err = rehome.move{
    tag = tag, to = to, count = n,
    done = function(done_ok, info)
      self.inflight = math.max(0, self.inflight - 1)
      if not done_ok then
        rehome.log("warn", ("move of %d calls of %s to %s failed: %s")
          :format(n, tag, to, tostring(info)))
      end
    end,
  }
  if not ok then
    rehome.log("warn", ("move of %s to %s not started: %s"):format(
      tag, to, err))
    return 0
  end

  self.inflight = self.inflight + 1
  self.since = rehome.now()
  return n
end

return M
