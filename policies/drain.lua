--[[
drain.lua - empty a node marked draining, spread over the others by load.

When to use: maintenance of one node without dropping calls. Mark the
node draining (`rehomectl drain`, POST /v1/drain) and, on that node, this
policy refuses new calls with 503 (callers and upstreams retry another
node) and every second moves a batch of at most RATE of its calls to the
live nodes, the least loaded first (balance.spread), until none is left.
It stops when the node is marked up again.

Needs this node's calls per tag (stats.tags[tag].calls) and the others'
call counts (stats.nodes[id].calls) in on_tick's stats.
]]

local rehome = require "rehome"
local balance = require "balance"
local mover = require "mover"

local RATE = 50            -- calls per second leaving this node

local function new_mover(state)
  return mover.new{rehome = rehome, rate = RATE, state = state}
end
local mv = new_mover()
local draining = false

local function targets(stats, me)
  local counts = {}
  for id, n in pairs(stats.nodes or {}) do
    if id ~= me and n.state == "up" then counts[id] = n.calls or 0 end
  end
  return counts
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

return {
  -- a reload keeps the pace: no fresh burst of moves
  on_unload = function() return {mover = mv:state()} end,
  on_load = function(state) if state then mv = new_mover(state.mover) end end,

  on_node_draining = function(node)
    if node == rehome.node_id() then
      draining = true
      rehome.log("info", "drain: moving every call off this node")
    end
  end,

  on_node_up = function(node)
    if node == rehome.node_id() then draining = false end
  end,

  on_initial_invite = function()
    if draining then return {reject = 503, reason = "Draining"} end
  end,

  on_tick = function(stats)
    local me = stats.node or rehome.node_id()
    local mine = stats.nodes and stats.nodes[me]
    if mine then draining = mine.state == "draining" end  -- survives reloads
    if not draining or not mv:idle() then return end

    local tag, calls = mover.fullest_tag(stats)
    if not tag then return end

    local shares = balance.spread(math.min(calls, RATE), targets(stats, me))
    for _, id in ipairs(sorted_keys(shares)) do
      if shares[id] > 0 then mv:move(tag, id, shares[id]) end
    end
  end,
}
