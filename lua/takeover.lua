--- takeover: take the sharing tags of dead nodes and re-home their calls.
--
-- Called on on_node_down and on every on_tick (a missed event, a lost
-- race or a failed attempt are then retried by the next sweep). For each
-- tag whose active node is down, every survivor computes the same taker
-- with `choose`; only the taker acts, with rehome.rehome{tag=}, which
-- takes the tag (compare-and-set on its epoch in Redis) and re-homes its
-- calls. A tag is not tried again while its re-home runs, or for
-- `retry_ms` if the report never comes.
--
-- The `rehome` module is passed in, so this file can be tested with a
-- fake one.
--
--   local t = require("takeover").new{rehome = rehome}
--   return {on_node_down = function() t:sweep() end,
--           on_tick = function() t:sweep() end}

local nodes = require "nodes"

local M = {}
local Takeover = {}
Takeover.__index = Takeover

--- Choice: the tag's declared backups first (if the engine lists them),
-- else any live node; the one whose id follows the dead node's.
function M.successor(list, tag)
  local backups
  if tag.backups and #tag.backups > 0 then
    backups = {}
    for _, id in ipairs(tag.backups) do backups[id] = true end
  end
  return nodes.successor(list, tag.active, backups)
      or nodes.successor(list, tag.active)
end

--- Choice: a live node by hashing the tag's name, so that the tags of a
-- dead node spread over all survivors.
function M.by_hash(list, tag)
  return nodes.pick(list, tag.name, tag.active)
end

--- opts: rehome (module), choose (default M.successor), mode, body, rate,
-- retry_ms (default 30000).
function M.new(opts)
  assert(opts and opts.rehome, "takeover.new needs the rehome module")
  return setmetatable({
    rehome = opts.rehome,
    choose = opts.choose or M.successor,
    mode = opts.mode, body = opts.body, rate = opts.rate,
    retry_ms = opts.retry_ms or 30000,
    pending = {},            -- tag name -> rehome.now() when started
  }, Takeover)
end

local function owner_down(list, id)
  local n = nodes.find(list, id)
  return n == nil or n.state == "down"
end

function Takeover:start(tag)
  local rehome = self.rehome
  local name = tag.name
  rehome.log("info", ("takeover: %s is down, taking tag %s"):format(
    tag.active, name))
  self.pending[name] = rehome.now()

  local ok, err = rehome.rehome{
    tag = name, mode = self.mode, body = self.body, rate = self.rate,
    done = function(done_ok, info)
      self.pending[name] = nil
      if not done_ok then
        rehome.log("warn", ("takeover of %s failed: %s"):format(
          name, tostring(info)))
      end
    end,
  }
  if not ok then
    self.pending[name] = nil
    rehome.log("warn", ("takeover of %s not started: %s"):format(name, err))
  end
end

--- Take every tag of a dead node that this node is the taker of.
-- Returns the names of the tags it started to take.
function Takeover:sweep()
  local rehome = self.rehome
  local me, list, tags = rehome.node_id(), rehome.nodes(), rehome.shtags()
  local started = {}
  if not list or not tags then return started end

  local now = rehome.now()
  for _, tag in ipairs(tags) do
    local since = self.pending[tag.name]
    if tag.active and tag.active ~= me and owner_down(list, tag.active)
       and not (since and now - since < self.retry_ms)
       and self.choose(list, tag) == me then
      self:start(tag)
      started[#started + 1] = tag.name
    end
  end
  return started
end

return M
