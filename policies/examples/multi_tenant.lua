--[[
multi_tenant.lua - a sharing tag per customer, the customers partitioned
across the nodes.

When to use: a platform serving several customers (tenants) whose calls
must fail over, be moved and be counted per customer, with every node
serving some of them. Each customer has its own tag, "t-<name>"; a new
call gets its customer's tag from the X-Tenant header (set by a trusted
upstream) or else from its From domain. A call of no known customer is
refused with 403 (STRICT) or given DEFAULT_TAG.

Each customer's tag has a home: the live node that hashes highest with
the tag's name (highest-random-weight, lua/nodes.lua), so every node
computes the same homes from the same node list, the customers spread
evenly, and when a node dies only its customers move, spread over the
survivors. Every second each node takes the tags whose home it is: a tag
nobody holds is taken (rehome.take), a tag held by a dead node or (with
FAILBACK) by a live node that is not its home is re-homed here with its
calls (rehome.rehome), one re-homing at a time.

Configure every tag on every node as backup (`shtag t-acme backup`...):
the policy, not the config, decides who holds what.
]]

local rehome = require "rehome"
local nodes = require "nodes"

local TENANTS = {
  acme    = {domains = {"acme.example.com", "acme.example.net"}},
  globex  = {domains = {"globex.example.com"}},
  initech = {domains = {"initech.example.org"}},
}
local HEADER = "x-tenant"  -- names a tenant; trust it from upstream only
local STRICT = true        -- unknown customer: 403; false: DEFAULT_TAG
local DEFAULT_TAG = "t-other"
local FAILBACK = true      -- take a tag home from a live node too
local RETRY_MS = 30000     -- a re-homing without report: try again after

local by_domain, tags = {}, {}
for name, t in pairs(TENANTS) do
  tags[#tags + 1] = "t-" .. name
  for _, d in ipairs(t.domains) do by_domain[d:lower()] = "t-" .. name end
end
table.sort(tags)

local busy_since   -- rehome.now() of the re-homing under way, or nil

local function tenant_tag(req)
  local name = (req.headers[HEADER] or ""):lower()
  if TENANTS[name] then return "t-" .. name end
  return by_domain[req.from_host:lower()]
end

--- The home of each tenant tag among the live nodes: {tag = node id}
local function homes(list)
  local out = {}
  for _, tag in ipairs(tags) do out[tag] = nodes.pick(list, tag) end
  return out
end

local function rehome_here(tag, why)
  rehome.log("info", ("multi_tenant: %s comes here (%s)"):format(tag, why))
  busy_since = rehome.now()
  local ok, err = rehome.rehome{tag = tag,
                                done = function() busy_since = nil end}
  if not ok then
    busy_since = nil
    rehome.log("warn", ("multi_tenant: %s not re-homed: %s"):format(
      tag, tostring(err)))
  end
end

local function sweep()
  local me, list, held = rehome.node_id(), rehome.nodes(), rehome.shtags()
  if not list or not held then return end
  if busy_since and rehome.now() - busy_since < RETRY_MS then return end
  busy_since = nil

  local home = homes(list)
  for _, t in ipairs(held) do
    if home[t.name] == me and t.active ~= me then
      if not t.active then
        rehome.take(t.name)
      elseif not nodes.is_up(list, t.active) then
        return rehome_here(t.name, t.active .. " is down")
      elseif FAILBACK and nodes.find(list, t.active).state == "up" then
        return rehome_here(t.name, "its home again, from " .. t.active)
      end
    end
  end
end

return {
  on_initial_invite = function(req)
    local tag = tenant_tag(req)
    if tag then return {shtag = tag} end
    if STRICT then return {reject = 403, reason = "Unknown Customer"} end
    return {shtag = DEFAULT_TAG}
  end,

  on_node_down = sweep,
  on_tick = sweep,
}
