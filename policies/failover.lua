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

New calls get the configured default_shtag. By default nothing moves
back when the node returns: a fail-back is an operator's decision
(`rehomectl rehome TAG --force` on the returned node), which avoids
flapping. With FAILBACK = true the returned node does it itself: once it
has been up and synced for FAILBACK_DELAY_MS, it takes back each tag its
config says `active` for from the live node holding it, one tag at a
time, re-homing the calls at FAILBACK_RATE (lua/failback.lua).
]]

local rehome = require "rehome"
local takeover = require "takeover"
local failback = require "failback"

local MODE = "challenge"   -- how calls are re-homed (see docs/policies.md)
local RATE = nil           -- dialogs per second; nil: rehome_rate of the config
local FAILBACK = false     -- take our preferred tags back when we return
local FAILBACK_DELAY_MS = 5000  -- up and synced this long first
local FAILBACK_RATE = 50   -- dialogs per second of a fail-back

local t = takeover.new{rehome = rehome, choose = takeover.successor,
                       mode = MODE, rate = RATE}
local fb = FAILBACK and failback.new{rehome = rehome, mode = MODE,
                                     rate = FAILBACK_RATE,
                                     delay_ms = FAILBACK_DELAY_MS}

return {
  on_node_down = function() t:sweep() end,
  on_tick = function()
    t:sweep()
    if fb then fb:sweep() end
  end,
}
