local hashring = require "hashring"

describe("hashring", function()
  it("gives nil on an empty ring", function()
    assert.is_nil(hashring.new({}):get("x"))
  end)

  it("maps every key to one of its tags, the same way each time", function()
    local ring = hashring.new({"a", "b", "c"})
    for i = 1, 200 do
      local tag = ring:get("call-" .. i)
      assert.is_truthy(({a = true, b = true, c = true})[tag])
      assert.are.equal(tag, ring:get("call-" .. i))
    end
  end)

  it("does not depend on the order tags were added in", function()
    local r1 = hashring.new({"a", "b", "c"})
    local r2 = hashring.new({"c"})
    r2:add("a"); r2:add("b")
    for i = 1, 200 do
      assert.are.equal(r1:get("k" .. i), r2:get("k" .. i))
    end
  end)

  it("spreads keys roughly evenly", function()
    local ring = hashring.new({"a", "b", "c", "d"})
    local seen = {a = 0, b = 0, c = 0, d = 0}
    for i = 1, 4000 do
      local tag = ring:get("call-" .. i .. "@host")
      seen[tag] = seen[tag] + 1
    end
    for tag, n in pairs(seen) do
      assert.is_true(n > 500 and n < 1500, tag .. " got " .. n)
    end
  end)

  it("moves only the removed tag's keys", function()
    local ring = hashring.new({"a", "b", "c", "d"})
    local before = {}
    for i = 1, 1000 do before[i] = ring:get(i) end
    ring:remove("d")
    assert.are.same({"a", "b", "c"}, ring:tags())
    for i = 1, 1000 do
      if before[i] ~= "d" then assert.are.equal(before[i], ring:get(i)) end
      assert.are_not.equal("d", ring:get(i))
    end
  end)

  it("refuses a bad replica count", function()
    assert.has_error(function() hashring.new({"a"}, 0) end)
  end)
end)
