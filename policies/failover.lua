--[[
failover.lua - hot standby: a dead node's tags move to a live backup.

When to use: two or more nodes where each sharing tag is "active" on one
node and "backup" on the others (see conf/node1.conf and node2.conf), and
calls must survive the loss of a node without an operator. When a node's
heartbeats stop, exactly one survivor takes each of its tags and re-homes
the calls under them: the tag's declared backups are preferred (when the
engine lists them), and among the candidates the node whose id follows
the dead node's, so every node computes the same taker and the tags of
several dead nodes spread over the survivors. The sweep also runs every
second, which retries a takeover that failed or lost a race.

New calls get the configured default_shtag. Nothing moves back when the
node returns: a fail-back is an operator's decision
(`rehomectl rehome TAG` on the returned node), which avoids flapping.
]]

local rehome = require "rehome"
local takeover = require "takeover"

local MODE = "challenge"   -- how calls are re-homed (see docs/policies.md)
local RATE = nil           -- dialogs per second; nil: rehome_rate of the config

local t = takeover.new{rehome = rehome, choose = takeover.successor,
                       mode = MODE, rate = RATE}

return {
  on_node_down = function() t:sweep() end,
  on_tick = function() t:sweep() end,
}
