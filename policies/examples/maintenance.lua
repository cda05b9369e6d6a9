--[[
maintenance.lua - drain nodes in their maintenance windows, take calls
again after.

When to use: planned work on a node (an OS upgrade, a host reboot) at a
known time, without an operator at the console. WINDOWS lists, per node,
one-off windows (`from`/`to` dates) and weekly ones (`day` with
`from`/`to` times), all in UTC. From the start of its window a node
refuses new calls with 503 (callers and upstream proxies retry another
node, RFC 3261 21.5.4) and moves its calls, RATE a second, to the live
nodes that are not in a window themselves, the least loaded first. At the
end of the window it takes new calls again; the calls that left do not
come back (rebalance.lua can spread them again).

The window should leave time for the calls to leave: at RATE calls per
second, 3 000 calls take a minute. A node outside its window moves
nothing and never receives calls from a node in its window while it is
in one itself.
]]

local rehome = require "rehome"
local balance = require "balance"
local mover = require "mover"

local WINDOWS = {
  node1 = {{from = "2026-12-24 22:00", to = "2026-12-25 02:00"}},
  node2 = {{day = "sun", from = "02:00", to = "04:00"}},
}
local RATE = 50            -- calls per second leaving this node

local DAYS = {sun = 1, mon = 2, tue = 3, wed = 4, thu = 5, fri = 6, sat = 7}

local mv = mover.new{rehome = rehome, rate = RATE}
local draining = false

local function minutes(hhmm)
  local h, m = hhmm:match("^(%d%d):(%d%d)$")
  return assert(h, "time wants HH:MM") * 60 + m
end

--- "YYYY-MM-DD HH:MM" in UTC as Unix time
local function date(s)
  local y, mo, d, hhmm = s:match("^(%d+)-(%d+)-(%d+) (%d%d:%d%d)$")
  assert(y, "date wants YYYY-MM-DD HH:MM")
  -- days since 1970-01-01 (civil from days, proleptic Gregorian)
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return (era * 146097 + doe - 719468) * 86400 + minutes(hhmm) * 60
end

-- checked and converted once, at load: a bad window fails the load
for node, list in pairs(WINDOWS) do
  for _, w in ipairs(list) do
    if w.day then
      w.wday = assert(DAYS[w.day], node .. ": day wants sun..sat")
      w.start, w.stop = minutes(w.from), minutes(w.to)
    else
      w.start, w.stop = date(w.from), date(w.to)
    end
  end
end

--- Is `node` in one of its windows at Unix time t?
local function in_window(node, t)
  local tm = os.date("!*t", t)
  local week_min = tm.hour * 60 + tm.min
  for _, w in ipairs(WINDOWS[node] or {}) do
    if w.wday then
      if tm.wday == w.wday and week_min >= w.start and week_min < w.stop then
        return true
      end
    elseif t >= w.start and t < w.stop then
      return true
    end
  end
  return false
end

local function targets(stats, me, t)
  local counts = {}
  for id, n in pairs(stats.nodes or {}) do
    if id ~= me and n.state == "up" and not in_window(id, t) then
      counts[id] = n.calls or 0
    end
  end
  return counts
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

return {
  on_initial_invite = function()
    if draining then return {reject = 503, reason = "Maintenance"} end
  end,

  on_tick = function(stats)
    local me, t = stats.node or rehome.node_id(), os.time()
    local now_in = in_window(me, t)
    if now_in ~= draining then
      draining = now_in
      rehome.log("info", draining and "maintenance: window open, draining"
                 or "maintenance: window closed, taking calls again")
    end
    if not draining or not mv:idle() then return end

    local tag, calls = mover.fullest_tag(stats)
    if not tag then return end
    local shares = balance.spread(math.min(calls, RATE), targets(stats, me, t))
    for _, id in ipairs(sorted_keys(shares)) do
      if shares[id] > 0 then mv:move(tag, id, shares[id]) end
    end
  end,
}
