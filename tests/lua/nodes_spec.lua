local nodes = require "nodes"

local list = {
  {id = "n3", state = "up", calls = 5},
  {id = "n1", state = "down", calls = 0},
  {id = "n2", state = "up", calls = 9},
  {id = "n4", state = "draining", calls = 1},
}

describe("nodes", function()
  it("lists live nodes sorted by id", function()
    local live = nodes.live(list)
    assert.are.equal(2, #live)
    assert.are.equal("n2", live[1].id)
    assert.are.equal("n3", live[2].id)
    assert.are.equal(1, #nodes.live(list, "n2"))
  end)

  it("finds nodes and their state", function()
    assert.are.equal(9, nodes.find(list, "n2").calls)
    assert.is_nil(nodes.find(list, "n9"))
    assert.is_true(nodes.is_up(list, "n3"))
    assert.is_false(nodes.is_up(list, "n4"))
    assert.is_false(nodes.is_up(list, "n9"))
  end)

  it("picks the successor of a dead node, wrapping", function()
    assert.are.equal("n2", nodes.successor(list, "n1"))
    assert.are.equal("n3", nodes.successor(list, "n2"))
    assert.are.equal("n2", nodes.successor(list, "n3"))
    assert.are.equal("n2", nodes.successor(list, "n9"))   -- wraps
    assert.are.equal("n3", nodes.successor(list, "n1", {n3 = true}))
    assert.is_nil(nodes.successor({}, "n1"))
  end)

  it("picks by hash deterministically among live nodes", function()
    local counts = {n2 = 0, n3 = 0}
    for i = 1, 100 do
      local id = nodes.pick(list, "tag" .. i)
      counts[id] = counts[id] + 1
      assert.are.equal(id, nodes.pick(list, "tag" .. i))
    end
    assert.is_true(counts.n2 > 20 and counts.n3 > 20)
    assert.are.equal("n3", nodes.pick(list, "x", "n2"))
  end)

  it("finds the least loaded live node", function()
    assert.are.equal("n3", nodes.least_loaded(list))
    assert.are.equal("n2", nodes.least_loaded(list, "n3"))
  end)
end)
