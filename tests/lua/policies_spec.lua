-- The shipped policies, driven with a fake `rehome` module.
local fake = require "fake_rehome"

local function load_policy(name, f)
  package.loaded.rehome = f
  local hooks = dofile("policies/" .. name .. ".lua")
  package.loaded.rehome = nil
  return hooks
end

local function stats(me, per_node, tags, states)
  local s = {node = me, nodes = {}, tags = {}}
  for id, calls in pairs(per_node) do
    s.nodes[id] = {state = (states or {})[id] or "up", calls = calls}
  end
  for tag, calls in pairs(tags or {}) do s.tags[tag] = {calls = calls} end
  return s
end

describe("failover.lua", function()
  it("the next live node re-homes the dead node's tags", function()
    local f = fake.new("n2")
    f.list = {{id = "n1", state = "down"}, {id = "n2", state = "up"}}
    f.tags = {{name = "default", active = "n1"}}
    local p = load_policy("failover", f)
    p.on_node_down("n1")
    assert.are.equal("rehome", f.actions[1].kind)
    assert.are.equal("default", f.actions[1].req.tag)
    p.on_tick({})
    assert.are.equal(1, #f.actions)
  end)
end)

describe("failover.lua with FAILBACK", function()
  local function with_failback(f)
    local src = assert(io.open("policies/failover.lua")):read("a")
    local n
    src, n = src:gsub("local FAILBACK = false", "local FAILBACK = true")
    assert.are.equal(1, n)
    package.loaded.rehome = f
    local hooks = assert(load(src, "failover.lua"))()
    package.loaded.rehome = nil
    return hooks
  end

  it("is off by default: a returned node takes nothing back", function()
    local f = fake.new("n1")
    f.list = {{id = "n1", state = "up", synced = true},
              {id = "n2", state = "up", synced = true}}
    f.tags = {{name = "default", active = "n2", preferred = true}}
    local p = load_policy("failover", f)
    f.clock = 60000
    p.on_tick({})
    assert.are.equal(0, #f.actions)
  end)

  it("takes the preferred tag back once synced for the delay, forced",
     function()
    local f = fake.new("n1")
    f.list = {{id = "n1", state = "up", synced = true},
              {id = "n2", state = "up", synced = true}}
    f.tags = {{name = "default", active = "n2", preferred = true}}
    local p = with_failback(f)
    p.on_tick({})
    assert.are.equal(0, #f.actions)
    f.clock = 5000
    p.on_tick({})
    assert.are.equal(1, #f.actions)
    assert.are.equal("default", f.actions[1].req.tag)
    assert.is_true(f.actions[1].req.force)
    assert.are.equal(50, f.actions[1].req.rate)
  end)
end)

describe("active_active.lua", function()
  it("tags new calls with the node id", function()
    local f = fake.new("n7")
    local p = load_policy("active_active", f)
    assert.are.same({shtag = "n7"}, p.on_initial_invite({}))
  end)

  it("takes its own tag back from a live node", function()
    local f = fake.new("n1")
    f.list = {{id = "n1", state = "up"}, {id = "n2", state = "up"}}
    f.tags = {{name = "n1", active = "n2"}, {name = "n2", active = "n2"}}
    local p = load_policy("active_active", f)
    p.on_tick({})
    assert.are.equal(1, #f.actions)
    assert.are.equal("n1", f.actions[1].req.tag)
    p.on_tick({})
    assert.are.equal(1, #f.actions)
  end)
end)

describe("rebalance.lua", function()
  it("moves from the busiest node only, paced", function()
    local f = fake.new("n1")
    local p = load_policy("rebalance", f)
    p.on_tick(stats("n1", {n1 = 300, n2 = 100, n3 = 100}, {t = 300}))
    assert.are.equal(1, #f.actions)
    local req = f.actions[1].req
    assert.are.equal("t", req.tag)
    assert.is_true(req.to == "n2" or req.to == "n3")
    assert.are.equal(40, req.count)                 -- the burst
    f.finish(1, true)

    local f2 = fake.new("n2")
    local p2 = load_policy("rebalance", f2)
    p2.on_tick(stats("n2", {n1 = 300, n2 = 100, n3 = 100}, {t = 100}))
    assert.are.equal(0, #f2.actions)
  end)

  it("a reload in the middle of a burst keeps the pace", function()
    local f = fake.new("n1")
    local p = load_policy("rebalance", f)
    local busy = stats("n1", {n1 = 300, n2 = 100, n3 = 100}, {t = 300})
    p.on_tick(busy)
    assert.are.equal(40, f.actions[1].req.count)    -- the burst
    local state = p.on_unload()
    local p2 = load_policy("rebalance", f)
    p2.on_load(state)
    f.clock = 500                                  -- 10 tokens later
    p2.on_tick(busy)
    assert.are.equal(10, f.actions[2].req.count)   -- not a new burst
  end)

  it("stays still within 10 %", function()
    local f = fake.new("n1")
    local p = load_policy("rebalance", f)
    p.on_tick(stats("n1", {n1 = 105, n2 = 100, n3 = 96}, {t = 105}))
    assert.are.equal(0, #f.actions)
  end)
end)

describe("drain.lua", function()
  it("rejects new calls and spreads its calls while draining", function()
    local f = fake.new("n1")
    local p = load_policy("drain", f)
    assert.is_nil(p.on_initial_invite({}))
    p.on_node_draining("n1")
    assert.are.equal(503, p.on_initial_invite({}).reject)
    p.on_tick(stats("n1", {n1 = 100, n2 = 40, n3 = 0},
                    {t = 100}, {n1 = "draining"}))
    local moved = {}
    for _, a in ipairs(f.actions) do moved[a.req.to] = a.req.count end
    assert.are.same({n2 = 5, n3 = 45}, moved)
    p.on_node_up("n1")
    assert.is_nil(p.on_initial_invite({}))
  end)

  it("follows the node state in the stats", function()
    local f = fake.new("n1")
    local p = load_policy("drain", f)
    p.on_tick(stats("n1", {n1 = 10, n2 = 0}, {t = 10}, {n1 = "draining"}))
    assert.are.equal(1, #f.actions)
    assert.are.equal(503, p.on_initial_invite({}).reject)
  end)
end)

describe("partition.lua", function()
  local f = fake.new("n1")
  local p = load_policy("partition", f)
  local function req(t)
    t.headers = t.headers or {}
    t.from_host = t.from_host or "x.example.org"
    t.call_id = t.call_id or "abc@h"
    return t
  end

  it("uses a known tenant header", function()
    assert.are.same({shtag = "tenant-b"},
      p.on_initial_invite(req{headers = {["x-tenant"] = "tenant-b"}}))
    assert.are_not.same({shtag = "evil"},
      p.on_initial_invite(req{headers = {["x-tenant"] = "evil"}}))
  end)

  it("maps the From domain", function()
    assert.are.same({shtag = "tenant-a"},
      p.on_initial_invite(req{from_host = "A.example.com"}))
  end)

  it("hashes other calls onto the pool", function()
    local seen = {}
    for i = 1, 60 do
      seen[p.on_initial_invite(req{call_id = "c" .. i}).shtag] = true
    end
    assert.are.same({["pool-1"] = true, ["pool-2"] = true, ["pool-3"] = true},
                    seen)
  end)
end)

describe("media_failover.lua", function()
  it("moves a dead relay's calls to the least loaded relay up", function()
    local f = fake.new("n1")
    f.relay_list = {
      {relay = "udp:10.0.0.1:2223", state = "down", calls = 40},
      {relay = "udp:10.0.0.2:2223", state = "up", calls = 30},
      {relay = "udp:10.0.0.3:2223", state = "up", calls = 10},
    }
    local p = load_policy("media_failover", f)
    p.on_relay_down("udp:10.0.0.1:2223")
    assert.are.equal(1, #f.actions)
    assert.are.equal("move_media", f.actions[1].kind)
    assert.are.equal("udp:10.0.0.1:2223", f.actions[1].req.from)
    assert.are.equal("udp:10.0.0.3:2223", f.actions[1].req.to)
  end)

  it("tries again while calls are left and the relay is down", function()
    local f = fake.new("n1")
    f.relay_list = {
      {relay = "udp:10.0.0.1:2223", state = "down", calls = 5},
      {relay = "udp:10.0.0.2:2223", state = "up", calls = 0},
    }
    local p = load_policy("media_failover", f)
    p.on_relay_down("udp:10.0.0.1:2223")
    f.finish(1, true, {moved = 3, failed = 2})
    assert.are.equal(1, #f.timers)
    f.timers[1].fn()
    assert.are.equal(2, #f.actions)
    -- back up: a pending retry does nothing
    p.on_relay_up("udp:10.0.0.1:2223")
    f.finish(2, true, {moved = 1, failed = 1})
    f.timers[2].fn()
    assert.are.equal(2, #f.actions)
  end)

  it("waits for a relay to come up when none is", function()
    local f = fake.new("n1")
    f.relay_list = {{relay = "udp:10.0.0.1:2223", state = "down",
                     calls = 5}}
    local p = load_policy("media_failover", f)
    p.on_relay_down("udp:10.0.0.1:2223")
    assert.are.equal(0, #f.actions)
    assert.are.equal(1, #f.timers)
    f.relay_list[2] = {relay = "udp:10.0.0.2:2223", state = "up", calls = 0}
    f.timers[1].fn()
    assert.are.equal("move_media", f.actions[1].kind)
  end)
end)
