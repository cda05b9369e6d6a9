--[[
partition.lua - the sharing tag follows a rule on the call.

When to use: calls of different customers, trunks or regions must fail
over and be moved as groups, independently of each other; e.g. one tag
per tenant, so one tenant's calls can be moved to another node without
touching the others. The tag of a new call is, in order:
  1. the X-Tenant header, when it names a known tag;
  2. the From domain, looked up in DOMAINS;
  3. otherwise a consistent hash of the Call-ID over the POOL tags (a new
     pool tag only moves the calls of its share of the ring).
Every tag used here must be configured on every node (`shtag NAME ...`).
Tags of a dead node are taken over as in failover.lua.
]]

local rehome = require "rehome"
local hashring = require "hashring"
local takeover = require "takeover"

local HEADER = "x-tenant"
local DOMAINS = {
  ["a.example.com"] = "tenant-a",
  ["b.example.com"] = "tenant-b",
}
local POOL = {"pool-1", "pool-2", "pool-3"}

local known = {}
for _, tag in pairs(DOMAINS) do known[tag] = true end
for _, tag in ipairs(POOL) do known[tag] = true end

local ring = hashring.new(POOL)
local t = takeover.new{rehome = rehome}

return {
  on_initial_invite = function(req)
    local tag = req.headers[HEADER]
    if tag and known[tag] then return {shtag = tag} end

    tag = DOMAINS[req.from_host:lower()]
    if tag then return {shtag = tag} end

    return {shtag = ring:get(req.call_id)}
  end,
  on_node_down = function() t:sweep() end,
  on_tick = function() t:sweep() end,
}
