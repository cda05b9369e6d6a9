-- A stand-in for the engine's `rehome` module: records every action and
-- lets the test decide the answers and run the done callbacks.
local M = {}

function M.new(me)
  local f = {me = me or "n1", list = {}, tags = {}, clock = 0,
             actions = {}, logs = {}, fail = nil, relay_list = {},
             timers = {}}

  function f.node_id() return f.me end
  function f.nodes() return f.list end
  function f.shtags() return f.tags end
  function f.now() return f.clock end
  function f.relays() return f.relay_list end
  function f.after(ms, fn) f.timers[#f.timers + 1] = {ms = ms, fn = fn} end
  function f.log(level, msg) f.logs[#f.logs + 1] = level .. " " .. msg end

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

  -- run the done function of action i with (ok, info)
  function f.finish(i, ok, info)
    f.actions[i].req.done(ok, info or {})
  end

  return f
end

return M
