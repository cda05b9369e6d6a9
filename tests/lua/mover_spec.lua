local fake = require "fake_rehome"
local mover = require "mover"

describe("mover", function()
  it("finds the fullest tag", function()
    assert.are.equal("b", mover.fullest_tag({tags = {a = {calls = 3},
                                                     b = {calls = 9}}}))
    assert.is_nil(mover.fullest_tag({tags = {a = {calls = 0}}}))
    assert.is_nil(mover.fullest_tag({}))
  end)

  it("paces moves and waits for their reports", function()
    local f = fake.new("n1")
    local mv = mover.new{rehome = f, rate = 10}
    assert.are.equal(10, mv:move("t", "n2", 25))
    assert.are.same({tag = "t", to = "n2", count = 10},
                    {tag = f.actions[1].req.tag, to = f.actions[1].req.to,
                     count = f.actions[1].req.count})
    assert.is_false(mv:idle())
    f.finish(1, true)
    assert.is_true(mv:idle())
    assert.are.equal(0, mv:move("t", "n2", 25))   -- bucket empty
    f.clock = 500
    assert.are.equal(5, mv:move("t", "n2", 25))
  end)

  it("goes on at the pace of a mover handed over", function()
    local f = fake.new("n1")
    local mv = mover.new{rehome = f, rate = 10}
    assert.are.equal(10, mv:move("t", "n2", 25))
    local mv2 = mover.new{rehome = f, rate = 10, state = mv:state()}
    assert.is_true(mv2:idle())        -- reports of the old one are gone
    assert.are.equal(0, mv2:move("t", "n2", 25))
    f.clock = 500
    assert.are.equal(5, mv2:move("t", "n2", 25))
  end)

  it("gives up waiting after stale_ms", function()
    local f = fake.new("n1")
    local mv = mover.new{rehome = f, rate = 10, stale_ms = 100}
    mv:move("t", "n2", 1)
    f.clock = 101
    assert.is_true(mv:idle())
  end)

  it("counts nothing when the engine refuses", function()
    local f = fake.new("n1")
    f.fail = "no such tag"
    local mv = mover.new{rehome = f}
    assert.are.equal(0, mv:move("t", "n2", 5))
    assert.is_true(mv:idle())
  end)
end)
