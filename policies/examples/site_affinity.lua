--[[
site_affinity.lua - a dead node's calls go to a node of the same site.

When to use: a cluster spread over sites (data centres, availability
zones) where a call should stay in its site when its node dies: its media
path, latency and the site's links stay the same. Each node says where it
is with `node_meta site NAME` in its config; the nodes' heartbeats carry
it, and rehome.nodes() shows it as node.meta.site.

When a node dies, each of its tags is taken by one live node of the same
site: among them the tag's declared backups first, then the node whose id
follows the dead node's, so every node computes the same taker. When no
node of that site is left, any live node takes it (FALLBACK), the same
way; a node with no site given is in no site. As in failover.lua, the
sweep runs every second to retry a take-over that failed or lost a race,
and nothing moves back when the node returns.
]]

local rehome = require "rehome"
local nodes = require "nodes"
local takeover = require "takeover"

local META = "site"        -- the node_meta key that names a node's site
local FALLBACK = true      -- no live node in the site: any live node
local RATE = nil           -- dialogs per second; nil: rehome_rate

local function site_of(list, id)
  local n = nodes.find(list, id)
  return n and n.meta and n.meta[META]
end

--- takeover's choice: a live node of the dead holder's site
local function same_site(list, tag)
  local site = site_of(list, tag.active)
  local local_nodes, backups = {}, {}
  for _, n in ipairs(list) do
    if site and n.meta and n.meta[META] == site then local_nodes[n.id] = true end
  end
  for _, id in ipairs(tag.backups or {}) do
    if local_nodes[id] then backups[id] = true end
  end

  local taker = next(backups) and nodes.successor(list, tag.active, backups)
      or next(local_nodes) and nodes.successor(list, tag.active, local_nodes)
  if not taker and FALLBACK then
    taker = nodes.successor(list, tag.active)
  end
  return taker
end

local t = takeover.new{rehome = rehome, choose = same_site, rate = RATE}

return {
  on_node_down = function() t:sweep() end,
  on_tick = function() t:sweep() end,
}
