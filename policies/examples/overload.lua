--[[
overload.lua - move calls off this node while it is overloaded, paced,
with hysteresis.

When to use: nodes that take traffic unevenly (a load balancer's weights,
a big customer calling one node) and must not run hot: above HIGH_CALLS
calls, or above HIGH_CPU of the one CPU its event loop runs on, a node
sheds calls to the least loaded live nodes until it is back under
LOW_CALLS and LOW_CPU. The gap between the two marks, and SUSTAIN seconds
over a mark before acting, keep a node near the limit from flapping, and
a burst of CPU from moving calls at all.

Shedding moves at most RATE calls per second from this node's fullest
tag, one batch at a time (lua/mover.lua waits for each batch's report),
to the live node with the fewest calls, never making that node cross
LOW_CALLS itself. CPU overload with few calls (a CPU-hungry neighbour, a
storm of registrations) sheds a batch a second until the CPU is back
under LOW_CPU. Each node decides for itself, from on_tick's stats
(stats.calls, stats.cpu, stats.nodes[id].calls).
]]

local rehome = require "rehome"
local mover = require "mover"

local HIGH_CALLS = 1000    -- shed above this many calls here ...
local LOW_CALLS = 800      -- ... down to this many
local HIGH_CPU = 0.80      -- or above this share of a CPU ...
local LOW_CPU = 0.60       -- ... down to this
local SUSTAIN = 3          -- seconds over a high mark before shedding
local RATE = 50            -- calls per second leaving this node

local mv = mover.new{rehome = rehome, rate = RATE}
local over = 0             -- seconds in a row over a high mark
local shedding = false

--- The live node other than me with the fewest calls, and its calls
local function coolest(stats, me)
  local best, calls
  for id, n in pairs(stats.nodes or {}) do
    if id ~= me and n.state == "up" and
       (not best or n.calls < calls or (n.calls == calls and id < best)) then
      best, calls = id, n.calls
    end
  end
  return best, calls
end

local function update(calls, cpu)
  if calls > HIGH_CALLS or cpu > HIGH_CPU then
    over = over + 1
  else
    over = 0
  end

  if not shedding and over >= SUSTAIN then
    shedding = true
    rehome.log("warn", ("overload: %d calls, cpu %.2f: shedding calls")
      :format(calls, cpu))
  elseif shedding and calls <= LOW_CALLS and cpu <= LOW_CPU then
    shedding = false
    rehome.log("info", ("overload: back to %d calls, cpu %.2f")
      :format(calls, cpu))
  end
end

return {
  on_tick = function(stats)
    local me = stats.node or rehome.node_id()
    local calls, cpu = stats.calls or 0, stats.cpu or 0
    update(calls, cpu)
    if not shedding or not mv:idle() then return end

    local to, their = coolest(stats, me)
    local tag, tagged = mover.fullest_tag(stats)
    if not to or not tag then return end

    -- the calls over LOW_CALLS; a node hot on CPU alone sheds a batch
    local excess = calls > LOW_CALLS and calls - LOW_CALLS or RATE
    local room = LOW_CALLS - their
    mv:move(tag, to, math.min(excess, room, tagged))
  end,
}
