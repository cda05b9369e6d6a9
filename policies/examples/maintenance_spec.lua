-- maintenance.lua, driven by rehome's testing kit (fake_rehome, scenario)
local scenario = require "scenario"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local POLICY = here .. "maintenance.lua"

-- Unix times (UTC)
local XMAS_EVE_2200 = 1798149600   -- 2026-12-24 22:00, node1's window
local XMAS_0200 = 1798164000       -- 2026-12-25 02:00, its end
local SUN_0230 = 1796524200        -- 2026-12-06 02:30, a Sunday: node2's

describe("maintenance.lua", function()
  local real_time = os.time
  local now
  before_each(function()
    now = 0
    os.time = function(t) return t and real_time(t) or now end
  end)
  after_each(function() os.time = real_time end)

  local function node(me)
    local f = scenario.cluster(me, {"node1", "node2", "node3"},
                               {t1 = "node1", t2 = "node2"})
    scenario.dialogs(f, 120, {"t1"}, "node1")
    scenario.dialogs(f, 40, {"t2"}, "node2")
    return f, f.load(POLICY)
  end

  it("drains node1 in its window only, then takes calls again", function()
    local f, p = node("node1")
    now = XMAS_EVE_2200 - 60
    assert.are.same({}, scenario.tick(f, p))
    assert.is_nil(p.on_initial_invite({}))

    now = XMAS_EVE_2200
    local acts = scenario.tick(f, p)
    assert.are.same({reject = 503, reason = "Maintenance"},
                    p.on_initial_invite({}))
    local moved = {}
    for _, a in ipairs(acts) do moved[a.req.to] = a.req.count end
    assert.are.same({node2 = 5, node3 = 45}, moved)  -- least loaded first

    local seconds = 0
    while f.stats().calls > 0 and seconds < 10 do
      scenario.finish_all(f)
      now = now + 1
      scenario.tick(f, p)
      seconds = seconds + 1
    end
    assert.are.equal(0, f.stats().calls)
    assert.are.equal(3, seconds)    -- 50/s: two more batches, then none

    now = XMAS_0200
    scenario.tick(f, p)
    assert.is_nil(p.on_initial_invite({}))
    assert.is_truthy(f.logs[#f.logs]:find("window closed"))
  end)

  it("keeps a weekly window", function()
    local f, p = node("node1")
    now = SUN_0230
    assert.are.same({}, scenario.tick(f, p))         -- node1 is not in one
    local f2, p2 = node("node2")
    local acts = scenario.tick(f2, p2)
    assert.are.equal(503, p2.on_initial_invite({}).reject)
    assert.are.equal(1, #acts)
    now = SUN_0230 + 86400                           -- Monday
    scenario.tick(f2, p2)
    assert.is_nil(p2.on_initial_invite({}))
    now = SUN_0230 + 7 * 86400 + 3600                -- next Sunday 03:30
    scenario.tick(f2, p2)
    assert.are.equal(503, p2.on_initial_invite({}).reject)
    now = SUN_0230 + 7 * 86400 + 5400                -- 04:00: over
    scenario.tick(f2, p2)
    assert.is_nil(p2.on_initial_invite({}))
  end)

  it("sends no calls to a node in its own window", function()
    -- the same policy, with node3 in a window at the same time as node2
    local src = assert(io.open(POLICY)):read("a")
    local n
    src, n = src:gsub("\n  node2 = ", '\n  node3 = {{day = "sun", from = '
                      .. '"02:00", to = "03:00"}},\n  node2 = ')
    assert.are.equal(1, n)
    local copy = os.tmpname()
    assert(io.open(copy, "w")):write(src):close()
    local f = scenario.cluster("node2", {"node1", "node2", "node3"},
                               {t1 = "node1", t2 = "node2"})
    scenario.dialogs(f, 120, {"t1"}, "node1")
    scenario.dialogs(f, 40, {"t2"}, "node2")
    local p = f.load(copy)
    os.remove(copy)

    now = SUN_0230
    local acts = scenario.tick(f, p)
    assert.are.equal(1, #acts)
    assert.are.same({to = "node1", count = 40},
                    {to = acts[1].req.to, count = acts[1].req.count})
  end)
end)
