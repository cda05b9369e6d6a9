--- hash: small string hashes that are the same on every node and every run.
--
-- Policies on different nodes must reach the same answer from the same
-- facts (who takes a dead node's tags, which tag a call gets), so nothing
-- here depends on addresses, random seeds or table order. Lua's own string
-- hash is seeded per state and cannot be used for that.

local M = {}

local FNV_OFFSET = 0x811c9dc5
local FNV_PRIME  = 0x01000193

--- FNV-1a over the bytes of s: an integer in [0, 2^32).
function M.fnv1a(s)
  local h = FNV_OFFSET
  for i = 1, #s do
    h = ((h ~ s:byte(i)) * FNV_PRIME) & 0xffffffff
  end
  return h
end

--- A score for the pair (a, b), for highest-random-weight choices.
function M.pair(a, b)
  return M.fnv1a(a .. "\0" .. b)
end

return M
