local ratelimit = require "ratelimit"

describe("ratelimit", function()
  it("grants the burst at once, then the rate", function()
    local b = ratelimit.new{rate = 10, burst = 20}
    assert.are.equal(20, b:take(100, 0))
    assert.are.equal(0, b:take(5, 0))
    assert.are.equal(5, b:take(5, 500))     -- 0.5 s -> 5 tokens
    assert.are.equal(5, b:take(100, 1000))
    assert.are.equal(20, b:take(100, 60000)) -- never more than the burst
  end)

  it("ignores a clock that goes back", function()
    local b = ratelimit.new{rate = 10}
    assert.are.equal(10, b:take(10, 1000))
    assert.are.equal(0, b:take(10, 500))
    assert.are.equal(0, b:take(10, 1000))
  end)

  it("goes on from a state handed over (a reload)", function()
    local b = ratelimit.new{rate = 10, burst = 20}
    assert.are.equal(15, b:take(15, 1000))
    local st = b:state()
    assert.are.same({tokens = 5, last = 1000}, st)
    local b2 = ratelimit.new{rate = 10, burst = 20, state = st}
    assert.are.equal(5, b2:take(100, 1000))
    assert.are.equal(5, b2:take(100, 1500))
    -- a smaller burst in the new version caps what was left
    local b3 = ratelimit.new{rate = 10, burst = 2, state = {tokens = 9}}
    assert.are.equal(2, b3:take(100, 0))
  end)

  it("refuses a bad rate", function()
    assert.has_error(function() ratelimit.new{rate = 0} end)
    assert.has_error(function() ratelimit.new{} end)
  end)
end)
