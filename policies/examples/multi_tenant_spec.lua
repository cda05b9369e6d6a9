-- multi_tenant.lua, driven by rehome's testing kit (fake_rehome, scenario)
local scenario = require "scenario"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local POLICY = here .. "multi_tenant.lua"
local NODES = {"n1", "n2", "n3"}
local TAGS = {"t-acme", "t-globex", "t-initech"}

local function req(t)
  return {headers = t.headers or {}, from_host = t.from_host or "x.org",
          call_id = "c1@h"}
end

local function node_on(me, holders)
  local f = scenario.cluster(me, NODES, holders or {
    ["t-acme"] = false, ["t-globex"] = false, ["t-initech"] = false})
  return f, f.load(POLICY)
end

-- who would take which tag, each node deciding alone
local function takers(holders)
  local got = {}
  for _, me in ipairs(NODES) do
    local f, p = node_on(me, holders)
    scenario.tick(f, p)
    for _, a in ipairs(f.actions) do
      assert.is_nil(got[a.req.tag], a.req.tag .. " taken twice")
      got[a.req.tag] = {node = me, kind = a.kind}
    end
  end
  return got
end

describe("multi_tenant.lua", function()
  it("gives each customer's calls its tag, refuses strangers", function()
    local _, p = node_on("n1")
    assert.are.same({shtag = "t-acme"},
                    p.on_initial_invite(req{from_host = "ACME.example.net"}))
    assert.are.same({shtag = "t-globex"}, p.on_initial_invite(
      req{headers = {["x-tenant"] = "Globex"}, from_host = "acme.example.com"}))
    assert.are.same({reject = 403, reason = "Unknown Customer"},
                    p.on_initial_invite(req{from_host = "evil.example"}))
  end)

  it("partitions the customers: every tag taken once, by its home",
     function()
    local got = takers()
    local homes = {}
    for _, tag in ipairs(TAGS) do
      assert.is_not_nil(got[tag], tag .. " taken by nobody")
      assert.are.equal("take", got[tag].kind)
      homes[tag] = got[tag].node
    end
    -- where the hash of the names puts them: on more than one node
    assert.are.same({["t-acme"] = "n1", ["t-globex"] = "n2",
                     ["t-initech"] = "n2"}, homes)
  end)

  it("moves only a dead node's customers, each to its new home", function()
    local settled = takers()
    local holders = {}
    for _, tag in ipairs(TAGS) do holders[tag] = settled[tag].node end
    local dead = settled["t-acme"].node

    local moved = {}
    for _, me in ipairs(NODES) do
      if me ~= dead then
        local f, p = node_on(me, holders)
        scenario.dialogs(f, 10000, TAGS)
        local acts = scenario.node_dies(f, p, dead)
        for _, a in ipairs(acts) do
          assert.are.equal("rehome", a.kind)
          assert.are.equal(dead, holders[a.req.tag])
          assert.is_nil(moved[a.req.tag])
          moved[a.req.tag] = me
        end
      end
    end
    for _, tag in ipairs(TAGS) do
      assert.are.equal(holders[tag] == dead, moved[tag] ~= nil, tag)
    end
  end)

  it("takes a customer home from a live node, one at a time", function()
    local settled = takers()
    local home = settled["t-acme"].node
    local other = home == "n1" and "n2" or "n1"
    local holders = {}
    for _, tag in ipairs(TAGS) do holders[tag] = other end
    local f, p = node_on(home, holders)
    local acts = scenario.tick(f, p)
    assert.are.equal(1, #acts)
    assert.are.equal("rehome", acts[1].kind)
    assert.are.same({}, scenario.tick(f, p, 5))   -- waits for the report
    scenario.finish_all(f)
    f.tags[1].active = home
    f.tags[2].active, f.tags[3].active = home, home
    assert.are.same({}, scenario.tick(f, p))
  end)
end)
