local fake = require "fake_rehome"
local takeover = require "takeover"

local function cluster(me)
  local f = fake.new(me)
  f.list = {{id = "n1", state = "down"}, {id = "n2", state = "up"},
            {id = "n3", state = "up"}}
  f.tags = {{name = "t1", active = "n1"}, {name = "t2", active = "n2"},
            {name = "t3", active = "n1", backups = {"n3"}}}
  return f
end

describe("takeover", function()
  it("only the successor takes a dead node's tags", function()
    local f2, f3 = cluster("n2"), cluster("n3")
    assert.are.same({"t1"}, takeover.new{rehome = f2}:sweep())
    assert.are.same({"t3"}, takeover.new{rehome = f3}:sweep())
    assert.are.equal("rehome", f2.actions[1].kind)
    assert.are.equal("t1", f2.actions[1].req.tag)
  end)

  it("does not start a tag twice while it runs, retries after a failure",
     function()
    local f = cluster("n2")
    local t = takeover.new{rehome = f, rate = 7, mode = "caller"}
    t:sweep()
    assert.are.same({}, t:sweep())
    assert.are.equal(7, f.actions[1].req.rate)
    assert.are.equal("caller", f.actions[1].req.mode)
    f.finish(1, false, "lost the race")
    assert.are.same({"t1"}, t:sweep())
  end)

  it("retries when the report never comes", function()
    local f = cluster("n2")
    local t = takeover.new{rehome = f, retry_ms = 1000}
    t:sweep()
    f.clock = 999
    assert.are.same({}, t:sweep())
    f.clock = 1000
    assert.are.same({"t1"}, t:sweep())
  end)

  it("forgets a re-home that did not start", function()
    local f = cluster("n2")
    f.fail = "not supported"
    local t = takeover.new{rehome = f}
    t:sweep()
    f.fail = nil
    assert.are.same({"t1"}, t:sweep())
  end)

  it("leaves tags of draining nodes alone", function()
    local f = cluster("n2")
    f.list[1].state = "draining"
    assert.are.same({}, takeover.new{rehome = f}:sweep())
  end)

  it("by_hash agrees on every node and spreads tags", function()
    local takers = {}
    for i = 1, 40 do
      local tag = {name = "tag" .. i, active = "n1"}
      takers[takeover.by_hash(cluster("n2").list, tag)] = true
    end
    assert.is_true(takers.n2 and takers.n3)
  end)
end)
