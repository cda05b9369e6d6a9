-- site_affinity.lua, driven by rehome's testing kit (fake_rehome, scenario)
local scenario = require "scenario"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local POLICY = here .. "site_affinity.lua"
local NODES = {"a1", "a2", "b1", "b2", "c1"}
local META = {a1 = {site = "paris"}, a2 = {site = "paris"},
              b1 = {site = "lyon"}, b2 = {site = "lyon"}}   -- c1: none

local function node_on(me, tags)
  local f = scenario.cluster(me, NODES, tags, META)
  return f, f.load(POLICY)
end

-- the nodes that act when `dead` dies holding `tags`
local function takers(dead, tags, also_dead)
  local got = {}
  for _, me in ipairs(NODES) do
    if me ~= dead and me ~= also_dead then
      local f, p = node_on(me, tags)
      if also_dead then scenario.node_dies(f, p, also_dead) end
      scenario.dialogs(f, 100, {"svc"})
      for _, a in ipairs(scenario.node_dies(f, p, dead)) do
        assert.are.equal("rehome", a.kind)
        got[#got + 1] = me .. ":" .. a.req.tag
      end
    end
  end
  table.sort(got)
  return got
end

describe("site_affinity.lua", function()
  it("a node of the dead node's site takes its tags", function()
    assert.are.same({"b2:svc"}, takers("b1", {svc = "b1"}))
    assert.are.same({"a2:svc"}, takers("a1", {svc = "a1"}))
  end)

  it("prefers the tag's declared backups within the site", function()
    local got = {}
    for _, me in ipairs({"a1", "b1", "b2"}) do
      local f, p = node_on(me, {svc = "a2"})
      f.tags[1].backups = {"b2", "a1"}
      for _, a in ipairs(scenario.node_dies(f, p, "a2")) do
        got[#got + 1] = me .. ":" .. a.kind
      end
    end
    assert.are.same({"a1:rehome"}, got)
  end)

  it("falls back to any live node when the site is gone", function()
    -- a2 dead already, then a1 dies: the next live node after a1 takes
    assert.are.same({"b1:svc"}, takers("a1", {svc = "a1"}, "a2"))
  end)

  it("a node of no site is taken over by the next live node", function()
    assert.are.same({"a1:svc"}, takers("c1", {svc = "c1"}))
  end)
end)
