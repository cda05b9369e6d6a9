local fake = require "fake_rehome"
local failback = require "failback"

-- n1 came back: n2 took its preferred tag t1 meanwhile
local function returned()
  local f = fake.new("n1")
  f.list = {{id = "n1", state = "up", synced = true},
            {id = "n2", state = "up", synced = true}}
  f.tags = {{name = "t1", active = "n2", preferred = true},
            {name = "t2", active = "n2", preferred = false},
            {name = "t3", active = "n2", preferred = true}}
  return f
end

describe("failback", function()
  it("waits until this node has been up and synced for delay_ms",
     function()
    local f = returned()
    f.list[1].synced = false
    local fb = failback.new{rehome = f, delay_ms = 1000}
    assert.is_nil(fb:sweep())
    f.list[1].synced = true
    f.clock = 500
    assert.is_nil(fb:sweep())         -- ready since 500
    f.clock = 1499
    assert.is_nil(fb:sweep())
    f.clock = 1500
    assert.are.equal("t1", fb:sweep())
    assert.are.same({kind = "rehome"}, {kind = f.actions[1].kind})
    assert.is_true(f.actions[1].req.force)
    assert.are.equal("t1", f.actions[1].req.tag)
  end)

  it("takes one preferred tag at a time, paced", function()
    local f = returned()
    local fb = failback.new{rehome = f, delay_ms = 0, rate = 20}
    assert.are.equal("t1", fb:sweep())
    assert.are.equal(20, f.actions[1].req.rate)
    assert.is_nil(fb:sweep())         -- t1 still moving
    f.tags[1].active = "n1"
    f.finish(1, true)
    assert.are.equal("t3", fb:sweep())
    f.tags[3].active = "n1"
    f.finish(2, true)
    assert.is_nil(fb:sweep())         -- t2 is not preferred here
    assert.are.equal(2, #f.actions)
  end)

  it("leaves tags of down or draining holders, and free tags, alone",
     function()
    local f = returned()
    f.list[2].state = "draining"
    local fb = failback.new{rehome = f, delay_ms = 0}
    assert.is_nil(fb:sweep())
    f.list[2].state = "down"
    assert.is_nil(fb:sweep())
    f.list[2].state = "up"
    f.tags = {{name = "t1", preferred = true}}
    assert.is_nil(fb:sweep())
    assert.are.equal(0, #f.actions)
  end)

  it("starts the delay again when the node flaps", function()
    local f = returned()
    local fb = failback.new{rehome = f, delay_ms = 1000}
    fb:sweep()
    f.clock = 900
    f.list[1].synced = false
    fb:sweep()
    f.list[1].synced = true
    f.clock = 1000
    assert.is_nil(fb:sweep())
    f.clock = 2000
    assert.are.equal("t1", fb:sweep())
  end)

  it("tries again after a failure or a lost report", function()
    local f = returned()
    local fb = failback.new{rehome = f, delay_ms = 0, retry_ms = 5000}
    fb:sweep()
    f.finish(1, false, "lost the race")
    assert.are.equal("t1", fb:sweep())
    f.clock = 4999
    assert.is_nil(fb:sweep())
    f.clock = 5000
    assert.are.equal("t1", fb:sweep())
    f.fail = "not synced"
    f.clock = 20000
    fb.running = nil
    assert.are.equal("t1", fb:sweep())
    f.fail = nil
    assert.are.equal("t1", fb:sweep())  -- a start that failed is forgotten
  end)
end)
