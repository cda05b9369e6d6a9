--- fake_rehome: a stand-in for the engine's `rehome` module, for busted.
--
-- Part of rehome's testing kit (installed in <datadir>/rehome/testing,
-- see docs/policies.md "Testing a policy"). It records every action a
-- policy asks for instead of doing it, and lets the test set the scene
-- (nodes, tags, dialogs, media relays, the clock), decide the answers
-- (`fail`) and run the done callbacks (`finish`). scenario.lua builds on
-- it: a node dies, a tag moves, 10 000 dialogs.
--
--   local fake = require "fake_rehome"
--   local f = fake.new("node2")
--   f.list = {{id = "node1", state = "down"}, {id = "node2", state = "up"}}
--   f.tags = {{name = "acme", active = "node1"}}
--   local p = f.load("/etc/rehome/policy.lua")
--   p.on_node_down("node1")
--   assert.are.equal("rehome", f.actions[1].kind)
--
-- The shapes are the engine's (docs/policies.md, "Data shapes"): nodes
-- {id, state, self, calls, meta}, shtags {name, active, epoch, mine},
-- dialogs as GET /v1/dialogs shows them, on_tick's stats (f:stats()).

local M = {}

-- The policy library (balance, mover, ...) is ../lua beside this file,
-- in the source tree as where it is installed: policies require it.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local libpath = here .. "../lua/?.lua"
if not package.path:find(libpath, 1, true) then
  package.path = libpath .. ";" .. package.path
end

M.libdir = here .. "../lua"

--- A fake engine for node `me` (default "n1").
function M.new(me)
  local f = {me = me or "n1", list = {}, tags = {}, dialog_list = {},
             relay_list = {}, clock = 0, actions = {}, logs = {},
             timers = {}, fail = nil}

  function f.node_id() return f.me end
  function f.now() return f.clock end
  function f.log(level, msg) f.logs[#f.logs + 1] = level .. " " .. msg end
  function f.relays() return f.relay_list end

  -- nodes() with each node's calls counted from the dialogs, if any
  function f.nodes()
    if #f.dialog_list == 0 then return f.list end
    local per = f.calls_by_owner()
    for _, n in ipairs(f.list) do n.calls = per[n.id] or 0 end
    return f.list
  end

  function f.shtags()
    for _, t in ipairs(f.tags) do t.mine = t.active == f.me end
    return f.tags
  end

  --- dialogs{tag=, limit=}: of a tag (all without), at most limit (0: all)
  function f.dialogs(q)
    q = q or {}
    local out = {}
    for _, d in ipairs(f.dialog_list) do
      if not q.tag or d.shtag == q.tag then
        out[#out + 1] = d
        if q.limit and q.limit > 0 and #out >= q.limit then break end
      end
    end
    return out
  end

  local function action(kind, req)
    f.actions[#f.actions + 1] = {kind = kind, req = req}
    if f.fail then return nil, f.fail end
    return true
  end
  function f.rehome(req) return action("rehome", req) end
  function f.move(req) return action("move", req) end
  function f.move_media(req) return action("move_media", req) end
  function f.take(tag, done) return action("take", {tag = tag, done = done}) end
  function f.release(tag) return action("release", {tag = tag}) end

  --- after(ms, fn): runs when f.advance() moves the clock past it (or
  -- when the test calls f.timers[i].fn() itself)
  function f.after(ms, fn)
    f.timers[#f.timers + 1] = {ms = ms, at = f.clock + ms, fn = fn}
  end

  --- Run the done function of action i with (ok, info). A move that
  -- succeeds hands its count of dialogs over, as the engine would.
  function f.finish(i, ok, info)
    local a = f.actions[i]
    if ok and a.kind == "move" then
      f.hand_over(a.req.tag, a.req.to, a.req.count or 0)
    end
    if a.req.done then a.req.done(ok, info or {}) end
  end

  --- Move the clock by ms, running the after() functions due, in order.
  function f.advance(ms)
    local stop = f.clock + ms
    while true do
      table.sort(f.timers, function(a, b) return a.at < b.at end)
      local t = f.timers[1]
      if not t or t.at > stop then break end
      table.remove(f.timers, 1)
      f.clock = t.at
      t.fn()
    end
    f.clock = stop
  end

  --- Calls per node: the dialogs each owns (this node's replicas of
  -- them included, as the engine counts).
  function f.calls_by_owner()
    local per = {}
    for _, d in ipairs(f.dialog_list) do
      per[d.owner] = (per[d.owner] or 0) + 1
    end
    return per
  end

  --- `count` of this node's dialogs of `tag` now owned by node `to`.
  function f.hand_over(tag, to, count)
    for _, d in ipairs(f.dialog_list) do
      if count <= 0 then break end
      if d.shtag == tag and d.owner == f.me then
        d.owner, d.replica = to, true
        count = count - 1
      end
    end
  end

  --- on_tick's stats as the engine builds them: every node with its
  -- calls, every tag with this node's calls of it. Without dialogs the
  -- nodes' own `calls` fields count.
  function f.stats(extra)
    local s = {node = f.me, cps = 0, nodes = {}, tags = {}}
    local per = #f.dialog_list > 0 and f.calls_by_owner() or nil
    for _, n in ipairs(f.list) do
      local calls = per and (per[n.id] or 0) or (n.calls or 0)
      s.nodes[n.id] = {state = n.state, calls = calls}
    end
    s.calls = s.nodes[f.me] and s.nodes[f.me].calls or 0
    for _, t in ipairs(f.tags) do
      s.tags[t.name] = {active = t.active, epoch = t.epoch, calls = 0}
    end
    for _, d in ipairs(f.dialog_list) do
      if d.owner == f.me then
        local t = s.tags[d.shtag] or {calls = 0}
        t.calls = t.calls + 1
        s.tags[d.shtag] = t
      end
    end
    for k, v in pairs(extra or {}) do s[k] = v end
    return s
  end

  --- Load a policy file with this fake as its `rehome` module (global
  -- and require), as the engine does; returns its table of hooks.
  function f.load(path)
    local env = setmetatable({rehome = f}, {__index = _G})
    local chunk = assert(loadfile(path, "t", env))
    local saved = package.loaded.rehome
    package.loaded.rehome = f
    local ok, hooks = pcall(chunk)
    package.loaded.rehome = saved
    if not ok then error(hooks, 0) end
    assert(type(hooks) == "table", path .. ": does not return a table")
    return hooks
  end

  return f
end

return M
