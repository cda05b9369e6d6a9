local balance = require "balance"

local function apply(counts, moves)
  local c = {}
  for k, v in pairs(counts) do c[k] = v end
  for _, m in ipairs(moves) do
    c[m.from] = c[m.from] - m.count
    c[m.to] = c[m.to] + m.count
  end
  return c
end

describe("balance.plan", function()
  it("does nothing within the tolerance", function()
    assert.are.same({}, balance.plan({a = 110, b = 100, c = 90}))
    assert.are.same({}, balance.plan({a = 100}))
  end)

  it("moves the surplus to the emptiest nodes", function()
    local moves = balance.plan({a = 130, b = 100, c = 70})
    assert.are.same({{from = "a", to = "c", count = 30}}, moves)
  end)

  it("brings every node within the tolerance", function()
    local counts = {a = 500, b = 20, c = 7, d = 260, e = 0}
    local after = apply(counts, balance.plan(counts, 0.10))
    for id, n in pairs(after) do
      assert.is_true(n >= 157 - 16 and n <= 158 + 16, id .. "=" .. n)
    end
  end)

  it("reacts to a node below the band alone", function()
    local after = apply({a = 105, b = 105, c = 80},
                        balance.plan({a = 105, b = 105, c = 80}))
    assert.are.same({a = 97, b = 97, c = 96}, after)
  end)
end)

describe("balance.spread", function()
  it("fills the least loaded first", function()
    assert.are.same({b = 10}, balance.spread(10, {a = 50, b = 0}))
    local s = balance.spread(30, {a = 10, b = 0, c = 100})
    assert.are.equal(30, s.a + s.b)
    assert.is_nil(s.c)
    assert.are.same({a = 10, b = 20}, s)
  end)

  it("shares the remainder and gives every call", function()
    local s = balance.spread(7, {a = 0, b = 0, c = 0})
    assert.are.equal(7, s.a + s.b + s.c)
    assert.is_true(math.max(s.a, s.b, s.c) - math.min(s.a, s.b, s.c) <= 1)
  end)

  it("handles nothing to give or nowhere to go", function()
    assert.are.same({}, balance.spread(0, {a = 1}))
    assert.are.same({}, balance.spread(5, {}))
  end)
end)
