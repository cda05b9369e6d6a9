--- failback: a node that returns takes back the tags it prefers.
--
-- A tag is preferred here when this node's config says `shtag T active`
-- (the shtag's `preferred` field). After a fail-over another node holds
-- it; once this node is up and synced again, and has been for `delay_ms`
-- (it settled: a node flapping up and down moves nothing), it takes each
-- such tag back from its live holder with rehome.rehome{force = true},
-- which re-homes the calls here at `rate` dialogs per second. One tag at
-- a time: the next one starts when the previous re-home has reported (or
-- after `retry_ms` if the report never comes). Tags nobody holds, or
-- whose holder is down or draining, are left to the take-over and to the
-- operator.
--
--   local fb = require("failback").new{rehome = rehome, delay_ms = 5000}
--   return {on_tick = function() fb:sweep() end}

local nodes = require "nodes"

local M = {}
local Failback = {}
Failback.__index = Failback

--- opts: rehome (module), delay_ms (default 5000), rate, mode, body,
-- retry_ms (default 30000).
function M.new(opts)
  assert(opts and opts.rehome, "failback.new needs the rehome module")
  return setmetatable({
    rehome = opts.rehome,
    delay_ms = opts.delay_ms or 5000,
    mode = opts.mode, body = opts.body, rate = opts.rate,
    retry_ms = opts.retry_ms or 30000,
    ready_since = nil,       -- rehome.now() since this node is up, synced
    running = nil,           -- {tag =, since =} of the re-home under way
  }, Failback)
end

local function ready(list, me)
  local n = nodes.find(list, me)
  return n ~= nil and n.state == "up" and n.synced == true
end

--- The first tag preferred here that a live other node holds.
local function next_tag(list, tags, me)
  for _, tag in ipairs(tags) do
    if tag.preferred and tag.active and tag.active ~= me
       and nodes.is_up(list, tag.active) then
      return tag
    end
  end
  return nil
end

function Failback:start(tag)
  local rehome = self.rehome
  local name = tag.name
  rehome.log("info", ("fail-back: taking tag %s back from %s"):format(
    name, tag.active))
  self.running = {tag = name, since = rehome.now()}

  local ok, err = rehome.rehome{
    tag = name, force = true, mode = self.mode, body = self.body,
    rate = self.rate,
    done = function(done_ok, info)
      self.running = nil
      if not done_ok then
        rehome.log("warn", ("fail-back of %s failed: %s"):format(
          name, tostring(info)))
      end
    end,
  }
  if not ok then
    self.running = nil
    rehome.log("warn", ("fail-back of %s not started: %s"):format(
      name, tostring(err)))
  end
end

--- Take back at most one preferred tag; returns its name, or nil.
function Failback:sweep()
  local rehome = self.rehome
  local me, list, tags = rehome.node_id(), rehome.nodes(), rehome.shtags()
  local now = rehome.now()

  if not list or not tags or not ready(list, me) then
    self.ready_since = nil
    return nil
  end
  self.ready_since = self.ready_since or now
  if now - self.ready_since < self.delay_ms then return nil end

  local run = self.running
  if run and now - run.since < self.retry_ms then return nil end

  local tag = next_tag(list, tags, me)
  if not tag then return nil end
  self:start(tag)
  return tag.name
end

return M
