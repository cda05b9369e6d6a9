--[[
rebalance.lua - keep the calls per node within +/-10 % of the mean.

When to use: active-active clusters where calls pile up on some nodes
(after a failover, when a node joins, with uneven load-balancer weights).
Every second each node computes the same plan from the stats
(balance.plan: moves that bring every node back to the mean once one of
them is outside mean +/- TOLERANCE) and carries out only the moves that
start from itself: it moves calls of its fullest tag to the target node
with rehome.move, at most RATE calls per second and one batch at a time,
so the cluster converges without a re-INVITE storm.

Needs the per-node call counts in on_tick's stats (stats.nodes[id].calls).
]]

local rehome = require "rehome"
local balance = require "balance"
local mover = require "mover"

local TOLERANCE = 0.10     -- +/- 10 % around the mean
local RATE = 20            -- calls per second leaving this node
local BURST = 40

local function new_mover(state)
  return mover.new{rehome = rehome, rate = RATE, burst = BURST, state = state}
end
local mv = new_mover()

local function live_counts(stats)
  local counts = {}
  for id, n in pairs(stats.nodes or {}) do
    if n.state == "up" then counts[id] = n.calls or 0 end
  end
  return counts
end

return {
  -- a reload keeps the pace: no fresh burst of moves
  on_unload = function() return {mover = mv:state()} end,
  on_load = function(state) if state then mv = new_mover(state.mover) end end,

  on_tick = function(stats)
    local me = stats.node or rehome.node_id()
    if not mv:idle() then return end

    for _, m in ipairs(balance.plan(live_counts(stats), TOLERANCE)) do
      if m.from == me then
        local tag, calls = mover.fullest_tag(stats)
        if tag then mv:move(tag, m.to, math.min(m.count, calls)) end
        return  -- one batch per tick; the next tick sees the new counts
      end
    end
  end,
}
