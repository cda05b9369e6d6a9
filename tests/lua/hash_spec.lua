local hash = require "hash"

describe("hash.fnv1a", function()
  it("matches the published FNV-1a 32-bit vectors", function()
    assert.are.equal(0x811c9dc5, hash.fnv1a(""))
    assert.are.equal(0xe40c292c, hash.fnv1a("a"))
    assert.are.equal(0xbf9cf968, hash.fnv1a("foobar"))
  end)

  it("stays within 32 bits", function()
    local h = hash.fnv1a(string.rep("z", 1000))
    assert.is_true(h >= 0 and h < 2^32)
  end)

  it("scores pairs in order", function()
    assert.are_not.equal(hash.pair("a", "b"), hash.pair("b", "a"))
  end)
end)
