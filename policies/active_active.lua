--[[
active_active.lua - every node serves new calls under its own tag.

When to use: all nodes take traffic at once (DNS SRV, a load balancer, or
endpoints that know several nodes). Each node gives its new calls the
sharing tag named after itself, so the config of node N has
`shtag N active` and `shtag M backup` for every other node M.

When a node dies, one survivor takes its tag and re-homes its calls. The
survivor is chosen by hashing the tag's name over the live nodes, so the
tags of several dead nodes spread evenly. When the node comes back and
sees its own tag held by a live node, it takes the tag back and re-homes
those calls to itself (FAILBACK), at the configured pace.
]]

local rehome = require "rehome"
local nodes = require "nodes"
local takeover = require "takeover"

local FAILBACK = true      -- take our own tag back after a restart
local RATE = nil           -- dialogs per second; nil: rehome_rate of the config

local t = takeover.new{rehome = rehome, choose = takeover.by_hash, rate = RATE}
local failback_since       -- rehome.now() of a fail-back in progress

local function failback()
  local me = rehome.node_id()
  local list, tags = rehome.nodes(), rehome.shtags()
  if not FAILBACK or not list or not tags then return end
  if failback_since and rehome.now() - failback_since < 30000 then return end

  for _, tag in ipairs(tags) do
    if tag.name == me and tag.active and tag.active ~= me
       and nodes.is_up(list, tag.active) then
      rehome.log("info", "fail-back: taking our tag " .. me .. " back from "
                 .. tag.active)
      failback_since = rehome.now()
      local ok, err = rehome.rehome{tag = me, rate = RATE, force = true,
                                    done = function() failback_since = nil end}
      if not ok then
        failback_since = nil
        rehome.log("warn", "fail-back not started: " .. tostring(err))
      end
    end
  end
end

return {
  on_initial_invite = function()
    return {shtag = rehome.node_id()}
  end,
  on_node_down = function() t:sweep() end,
  on_tick = function()
    t:sweep()
    failback()
  end,
}
