-- overload.lua, driven by rehome's testing kit (fake_rehome, scenario)
local scenario = require "scenario"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local POLICY = here .. "overload.lua"

local function cluster()
  local f = scenario.cluster("n1", {"n1", "n2", "n3"},
                             {big = "n1", small = "n1"})
  scenario.dialogs(f, 1200, {big = 3, small = 1}, "n1")
  scenario.dialogs(f, 500, {"other"}, "n2")
  scenario.dialogs(f, 300, {"other"}, "n3")
  return f, f.load(POLICY)
end

local function moves(acts) return scenario.of_kind(nil, "move", acts) end

describe("overload.lua", function()
  it("waits SUSTAIN seconds over the mark before shedding", function()
    local f, p = cluster()
    assert.are.same({}, scenario.tick(f, p, 2))
    local acts = moves(scenario.tick(f, p))
    assert.are.equal(1, #acts)
    -- the fullest tag, to the coolest node, one second's worth
    assert.are.same({tag = "big", to = "n3", count = 50},
                    {tag = acts[1].req.tag, to = acts[1].req.to,
                     count = acts[1].req.count})
  end)

  it("sheds paced, one batch at a time, down to LOW_CALLS", function()
    local f, p = cluster()
    scenario.tick(f, p, 3)
    assert.are.same({}, moves(scenario.tick(f, p)))  -- batch not reported
    local seconds = 0
    while f.stats().calls > 800 and seconds < 60 do
      scenario.finish_all(f)
      scenario.tick(f, p)
      seconds = seconds + 1
    end
    scenario.finish_all(f)
    assert.are.equal(800, f.stats().calls)           -- not one more
    for _, a in ipairs(f.actions) do assert.is_true(a.req.count <= 50) end
    assert.is_true(seconds >= 8)                     -- 400 calls at 50/s
    assert.are.same({}, moves(scenario.tick(f, p, 5)))
  end)

  it("does not stop shedding between the marks (hysteresis)", function()
    local f, p = cluster()
    scenario.tick(f, p, 3)
    scenario.finish_all(f)                           -- 1150 left
    f.dialog_list = {table.unpack(f.dialog_list, 1, 950)}
    for i = 1, 950 do f.dialog_list[i].owner = "n1" end   -- between marks
    assert.are.equal(1, #moves(scenario.tick(f, p)))
  end)

  it("does not start between the marks either", function()
    local f = scenario.cluster("n1", {"n1", "n2"}, {big = "n1"})
    scenario.dialogs(f, 950, {"big"}, "n1")
    local p = f.load(POLICY)
    assert.are.same({}, scenario.tick(f, p, 10))
  end)

  it("sheds on CPU alone, and not on a CPU blip", function()
    local f = scenario.cluster("n1", {"n1", "n2"}, {big = "n1"})
    scenario.dialogs(f, 300, {"big"}, "n1")
    local p = f.load(POLICY)
    assert.are.same({}, scenario.tick(f, p, 2, 1000, {cpu = 0.95}))
    assert.are.same({}, scenario.tick(f, p, 5, 1000, {cpu = 0.30}))
    scenario.tick(f, p, 2, 1000, {cpu = 0.95})
    local acts = moves(scenario.tick(f, p, 1, 1000, {cpu = 0.95}))
    assert.are.equal(1, #acts)
    assert.are.equal(50, acts[1].req.count)
    scenario.finish_all(f)
    assert.are.same({}, moves(scenario.tick(f, p, 3, 1000, {cpu = 0.50})))
  end)

  it("never pushes another node over LOW_CALLS", function()
    local f = scenario.cluster("n1", {"n1", "n2"}, {big = "n1"})
    scenario.dialogs(f, 1500, {"big"}, "n1")
    scenario.dialogs(f, 790, {"other"}, "n2")
    local p = f.load(POLICY)
    local acts = moves(scenario.tick(f, p, 3))
    assert.are.equal(10, acts[1].req.count)
    scenario.finish_all(f)
    assert.are.same({}, moves(scenario.tick(f, p, 3)))
  end)
end)
