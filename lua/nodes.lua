--- nodes: choosing nodes from the list rehome.nodes() returns.
--
-- A node is a table {id = "n1", state = "up"|"down"|"draining", ...}.
-- Every choice here is deterministic: each node runs the same policy on
-- the same list and must pick the same node, or two nodes would both take
-- a tag (the epoch check in Redis makes one of them lose, but the calls
-- would be re-homed twice). Only nodes in state "up" receive work;
-- draining nodes are alive but are being emptied.

local hash = require "hash"

local M = {}

local function by_id(a, b) return a.id < b.id end

--- The nodes in state "up", sorted by id, optionally without one id.
function M.live(list, except)
  local out = {}
  for _, n in ipairs(list or {}) do
    if n.state == "up" and n.id ~= except then out[#out + 1] = n end
  end
  table.sort(out, by_id)
  return out
end

--- The node with that id, or nil.
function M.find(list, id)
  for _, n in ipairs(list or {}) do
    if n.id == id then return n end
  end
  return nil
end

--- Is the node with that id up?
function M.is_up(list, id)
  local n = M.find(list, id)
  return n ~= nil and n.state == "up"
end

--- The first live node after `id` in id order, wrapping around: who takes
-- over from `id`. Spreads the work of several dead nodes over survivors.
-- `candidates` (optional) is a set {id = true} that restricts the choice.
function M.successor(list, id, candidates)
  local first
  for _, n in ipairs(M.live(list, id)) do
    if not candidates or candidates[n.id] then
      first = first or n
      if n.id > id then return n.id end
    end
  end
  return first and first.id or nil
end

--- Highest-random-weight choice of a live node for `key` (e.g. a tag):
-- each key has its own preferred order of nodes, so the keys of a dead
-- node spread evenly over the survivors.
function M.pick(list, key, except)
  local best, best_score
  for _, n in ipairs(M.live(list, except)) do
    local score = hash.pair(n.id, key)
    if not best or score > best_score then best, best_score = n.id, score end
  end
  return best
end

--- The live node with the fewest calls (ties: smallest id), or nil.
function M.least_loaded(list, except)
  local best
  for _, n in ipairs(M.live(list, except)) do
    if not best or (n.calls or 0) < (best.calls or 0) then best = n end
  end
  return best and best.id or nil
end

return M
