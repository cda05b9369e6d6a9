--- hashring: consistent hashing of calls onto sharing tags.
--
-- Each tag owns `replicas` points on a 32-bit circle; a key (a Call-ID, a
-- From domain) belongs to the first point at or after its own hash. Adding
-- or removing a tag only moves the keys of that tag's arcs, so most calls
-- keep their tag when the set of tags changes. The points are rebuilt from
-- the sorted tag names on each change: the result does not depend on the
-- order tags were added in, which keeps every node in agreement.
--
--   local ring = require("hashring").new({"a", "b", "c"})
--   local tag = ring:get(req.call_id)

local hash = require "hash"

local M = {}
local Ring = {}
Ring.__index = Ring

local DEFAULT_REPLICAS = 64

local function rebuild(r)
  local names = {}
  for tag in pairs(r.members) do names[#names + 1] = tag end
  table.sort(names)

  r.points, r.owner = {}, {}
  for _, tag in ipairs(names) do
    for i = 1, r.replicas do
      local p = hash.fnv1a(tag .. "#" .. i)
      if not r.owner[p] then  -- on a clash the smaller name keeps it
        r.owner[p] = tag
        r.points[#r.points + 1] = p
      end
    end
  end
  table.sort(r.points)
end

--- A ring over the given tags; `replicas` points per tag (default 64).
function M.new(tags, replicas)
  local r = setmetatable({members = {}, replicas = replicas or DEFAULT_REPLICAS},
                         Ring)
  assert(math.type(r.replicas) == "integer" and r.replicas > 0,
         "replicas must be a positive integer")
  for _, tag in ipairs(tags or {}) do r.members[tag] = true end
  rebuild(r)
  return r
end

function Ring:add(tag)
  self.members[tag] = true
  rebuild(self)
end

function Ring:remove(tag)
  self.members[tag] = nil
  rebuild(self)
end

--- The tags on the ring, sorted.
function Ring:tags()
  local names = {}
  for tag in pairs(self.members) do names[#names + 1] = tag end
  table.sort(names)
  return names
end

--- The tag that owns key, or nil when the ring is empty.
function Ring:get(key)
  local points = self.points
  local n = #points
  if n == 0 then return nil end

  local h = hash.fnv1a(tostring(key))
  local lo, hi = 1, n
  if h > points[n] then return self.owner[points[1]] end  -- wrap around
  while lo < hi do
    local mid = (lo + hi) // 2
    if points[mid] < h then lo = mid + 1 else hi = mid end
  end
  return self.owner[points[lo]]
end

return M
