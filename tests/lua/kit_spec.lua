-- The testing kit itself (testing/fake_rehome.lua, testing/scenario.lua)
local fake = require "fake_rehome"
local scenario = require "scenario"

describe("fake_rehome", function()
  it("runs after() functions in time order as the clock moves", function()
    local f = fake.new("n1")
    local ran = {}
    f.after(300, function() ran[#ran + 1] = "b@" .. f.now() end)
    f.after(100, function()
      ran[#ran + 1] = "a@" .. f.now()
      f.after(100, function() ran[#ran + 1] = "c@" .. f.now() end)
    end)
    f.advance(250)
    assert.are.same({"a@100", "c@200"}, ran)
    f.advance(50)
    assert.are.same({"a@100", "c@200", "b@300"}, ran)
    assert.are.equal(300, f.now())
  end)

  it("filters dialogs by tag and limit", function()
    local f = scenario.cluster("n1", {"n1"}, {a = "n1", b = "n1"})
    scenario.dialogs(f, 10, {"a", "b"})
    assert.are.equal(5, #f.dialogs{tag = "a"})
    assert.are.equal(3, #f.dialogs{limit = 3})
    assert.are.equal(10, #f.dialogs())
    assert.are.equal("confirmed", f.dialogs()[1].state)
  end)

  it("loads a policy with itself as the rehome module", function()
    local f = fake.new("n9")
    local path = os.tmpname()
    assert(io.open(path, "w")):write(
      'local r = require "rehome"\n' ..
      'local nodes = require "nodes"\n' ..    -- the library is found
      'return {on_tick = function() r.release(rehome.node_id()) end}\n')
      :close()
    local p = f.load(path)
    os.remove(path)
    p.on_tick(f.stats())
    assert.are.same({kind = "release", req = {tag = "n9"}}, f.actions[1])
    assert.is_nil(package.loaded.rehome)
  end)
end)

describe("scenario", function()
  it("makes 10 000 dialogs with the tags' shares", function()
    local f = scenario.cluster("n1", {"n1", "n2"}, {a = "n1", b = "n2"})
    local added = scenario.dialogs(f, 10000, {a = 3, b = 1})
    assert.are.equal(10000, #added)
    assert.are.equal(7500, #f.dialogs{tag = "a"})
    assert.are.equal(2500, #f.dialogs{tag = "b"})
    local s = f.stats()
    assert.are.same({state = "up", calls = 7500}, s.nodes.n1)
    assert.are.same({state = "up", calls = 2500}, s.nodes.n2)
    assert.are.equal(7500, s.calls)
    assert.are.equal(7500, s.tags.a.calls)
    assert.are.equal(0, s.tags.b.calls)
    assert.is_true(f.dialogs{tag = "b"}[1].replica)
    local dids = {}
    for _, d in ipairs(f.dialogs()) do dids[d.did] = true end
    local n = 0
    for _ in pairs(dids) do n = n + 1 end
    assert.are.equal(10000, n)
  end)

  it("a node dies: down in nodes() and stats, the policy hears it",
     function()
    local f = scenario.cluster("n2", {"n1", "n2"}, {a = "n1"})
    local heard
    local p = {on_node_down = function(id)
      heard = id
      f.rehome{tag = "a"}
    end}
    local acts = scenario.node_dies(f, p, "n1")
    assert.are.equal("n1", heard)
    assert.are.equal("down", f.nodes()[1].state)
    assert.are.equal("down", f.stats().nodes.n1.state)
    assert.are.same({{kind = "rehome", req = {tag = "a"}}}, acts)
    assert.are.same({}, scenario.node_dies(f, {}, "n1"))   -- no hook
  end)

  it("a tag moves: new holder, epoch, owner; the taker hears it done",
     function()
    local f = scenario.cluster("n2", {"n1", "n2"}, {a = "n1"})
    scenario.dialogs(f, 30, {"a"})
    local result
    local p = {on_rehome_done = function(r) result = r end}
    scenario.tag_moves(f, p, "a", "n2")
    assert.are.equal("n2", f.shtags()[1].active)
    assert.is_true(f.shtags()[1].mine)
    assert.are.equal(2, f.shtags()[1].epoch)
    assert.are.equal(30, f.stats().calls)
    assert.are.equal(30, result.moved)
  end)

  it("a finished move hands its dialogs over", function()
    local f = scenario.cluster("n1", {"n1", "n2"}, {a = "n1"})
    scenario.dialogs(f, 100, {"a"})
    local done
    f.move{tag = "a", to = "n2", count = 40,
           done = function(ok) done = ok end}
    scenario.finish_all(f)
    assert.is_true(done)
    assert.are.equal(60, f.stats().calls)
    assert.are.equal(40, f.stats().nodes.n2.calls)
    scenario.finish_all(f)                      -- once only
    assert.are.equal(60, f.stats().calls)
  end)
end)
