--- scenario: what happens to a cluster, played against a policy under test.
--
-- Part of rehome's testing kit, on top of fake_rehome: each helper changes
-- the fake engine's view the way the engine would, then calls the hook
-- the engine would call, if the policy has it. They return the actions
-- the policy took meanwhile (entries of f.actions: {kind =, req =}).
--
--   local fake = require "fake_rehome"
--   local scenario = require "scenario"
--   local f = scenario.cluster("node2", {"node1", "node2", "node3"},
--                              {acme = "node1"})
--   scenario.dialogs(f, 10000, {acme = 1}, "node1")
--   local p = f.load("policies/failover.lua")
--   local acts = scenario.node_dies(f, p, "node1")
--   assert.are.equal("rehome", acts[1].kind)

local fake = require "fake_rehome"

local M = {}

local function node(f, id)
  for _, n in ipairs(f.list) do
    if n.id == id then return n end
  end
  error("no node " .. tostring(id), 3)
end

local function tag(f, name)
  for _, t in ipairs(f.tags) do
    if t.name == name then return t end
  end
  error("no tag " .. tostring(name), 3)
end

-- Run fn and return the actions it added to f.actions
local function taken(f, fn)
  local first = #f.actions + 1
  fn()
  local out = {}
  for i = first, #f.actions do out[#out + 1] = f.actions[i] end
  return out
end

local function call(p, hook, ...)
  if p and p[hook] then return p[hook](...) end
end

--- A fake engine for node `me` in a cluster of `ids` (all up); `tags`:
-- {name = holder} (holder false: nobody), epoch 1. `meta`, optional:
-- {id = {site = ...}}, each node's node_meta.
function M.cluster(me, ids, tags, meta)
  local f = fake.new(me)
  for _, id in ipairs(ids) do
    f.list[#f.list + 1] = {id = id, state = "up", self = id == me,
                           calls = 0, meta = (meta or {})[id] or {}}
  end
  local names = {}
  for name in pairs(tags or {}) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    f.tags[#f.tags + 1] = {name = name, active = tags[name] or nil,
                           epoch = 1}
  end
  return f
end

--- n dialogs, confirmed, owned by `owner` (default: the tag's holder,
-- else this node). `tags`: {name = weight}: each tag gets its share of n
-- (rounded, the remainder to the first tags in name order), or a list of
-- names, shared evenly. Returns the dialogs added.
function M.dialogs(f, n, tags, owner)
  local names, weight, total = {}, {}, 0
  if tags[1] then
    for _, name in ipairs(tags) do names[#names + 1] = name; weight[name] = 1 end
  else
    for name, w in pairs(tags) do names[#names + 1] = name; weight[name] = w end
  end
  table.sort(names)
  for _, name in ipairs(names) do total = total + weight[name] end

  local added, left = {}, n
  for i, name in ipairs(names) do
    local share = i == #names and left or
                  math.floor(n * weight[name] / total + 0.5)
    share = math.min(share, left)
    left = left - share
    local holder
    for _, t in ipairs(f.tags) do
      if t.name == name then holder = t.active end
    end
    for _ = 1, share do
      local k = #f.dialog_list + 1
      local d = {did = string.format("%016x", k), callid = "call-" .. k ..
                 "@test", shtag = name, state = "confirmed",
                 owner = owner or holder or f.me, replica = false,
                 created = f.clock, updated = f.clock, version = 1}
      d.replica = d.owner ~= f.me
      f.dialog_list[k] = d
      added[#added + 1] = d
    end
  end
  return added
end

--- Node `id` dies: it is down in nodes() and stats; its tags stay held by
-- it (as the engine shows them until someone takes them); then the
-- policy hears on_node_down(id).
function M.node_dies(f, p, id)
  node(f, id).state = "down"
  return taken(f, function() call(p, "on_node_down", id) end)
end

--- Node `id` is up again: on_node_up(id).
function M.node_returns(f, p, id)
  node(f, id).state = "up"
  return taken(f, function() call(p, "on_node_up", id) end)
end

--- Node `id` is marked draining: on_node_draining(id).
function M.node_drains(f, p, id)
  node(f, id).state = "draining"
  return taken(f, function() call(p, "on_node_draining", id) end)
end

--- Tag `name` moves to node `to` (a take-over, a fail-back): its epoch
-- goes up, its dialogs are owned by `to`, and a policy on `to` hears
-- on_rehome_done with the result.
function M.tag_moves(f, p, name, to)
  local t = tag(f, name)
  t.active = to
  t.epoch = (t.epoch or 0) + 1
  local moved = 0
  for _, d in ipairs(f.dialog_list) do
    if d.shtag == name then
      d.owner, d.replica = to, to ~= f.me
      moved = moved + 1
    end
  end
  return taken(f, function()
    if to == f.me then
      call(p, "on_rehome_done", {tag = name, mode = "challenge",
                                 total = moved, moved = moved, failed = 0,
                                 reasons = {}})
    end
  end)
end

--- Time goes by, `ms` (default 1000) at a time for `ticks` ticks (default
-- 1): after() functions run when due, then on_tick with f.stats(extra).
function M.tick(f, p, ticks, ms, extra)
  return taken(f, function()
    for _ = 1, ticks or 1 do
      f.advance(ms or 1000)
      call(p, "on_tick", f.stats(extra))
    end
  end)
end

--- Every action still waiting for its done function gets it, with `ok`
-- (default true); a finished move hands its dialogs over.
function M.finish_all(f, ok)
  if ok == nil then ok = true end
  for i, a in ipairs(f.actions) do
    if not a.finished and (a.req.done or a.kind == "move") then
      a.finished = true
      f.finish(i, ok)
    end
  end
end

--- The actions of one kind among `acts` (default: all of f's).
function M.of_kind(f, kind, acts)
  local out = {}
  for _, a in ipairs(acts or f.actions) do
    if a.kind == kind then out[#out + 1] = a end
  end
  return out
end

return M
