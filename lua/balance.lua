--- balance: how many calls to move where.
--
-- Both functions take counts as a table {node_id = calls} and return
-- results in a stable order (by amount, then id), so that every node
-- computes the same plan and each executes only the moves it is the
-- source of.

local M = {}

local function sorted_ids(counts)
  local ids = {}
  for id in pairs(counts) do ids[#ids + 1] = id end
  table.sort(ids)
  return ids
end

local function by_amount(a, b)
  if a.n ~= b.n then return a.n > b.n end
  return a.id < b.id
end

--- Moves {from=, to=, count=} that bring every node back to the mean when
-- one of them is outside mean * (1 +/- tolerance); {} when all are within.
-- tolerance defaults to 0.10 (+/- 10 %).
function M.plan(counts, tolerance)
  tolerance = tolerance or 0.10
  local ids = sorted_ids(counts)
  if #ids < 2 then return {} end

  local total = 0
  for _, id in ipairs(ids) do total = total + counts[id] end
  local mean = total / #ids
  local lo, hi = mean * (1 - tolerance), mean * (1 + tolerance)

  local outside = false
  for _, id in ipairs(ids) do
    if counts[id] < lo or counts[id] > hi then outside = true end
  end
  if not outside then return {} end

  local givers, takers = {}, {}
  local top, bottom = math.ceil(mean), math.floor(mean)
  for _, id in ipairs(ids) do
    local c = counts[id]
    if c > top then givers[#givers + 1] = {id = id, n = c - top} end
    if c < bottom then takers[#takers + 1] = {id = id, n = bottom - c} end
  end
  table.sort(givers, by_amount)
  table.sort(takers, by_amount)

  local moves, g, t = {}, 1, 1
  while g <= #givers and t <= #takers do
    local n = math.min(givers[g].n, takers[t].n)
    moves[#moves + 1] = {from = givers[g].id, to = takers[t].id, count = n}
    givers[g].n, takers[t].n = givers[g].n - n, takers[t].n - n
    if givers[g].n == 0 then g = g + 1 end
    if takers[t].n == 0 then t = t + 1 end
  end
  return moves
end

--- Share `total` new calls among the nodes in counts so that the least
-- loaded fill up first ("water filling"); returns {node_id = share}.
function M.spread(total, counts)
  local nodes = {}
  for _, id in ipairs(sorted_ids(counts)) do
    nodes[#nodes + 1] = {id = id, n = counts[id]}
  end
  table.sort(nodes, function(a, b)
    if a.n ~= b.n then return a.n < b.n end
    return a.id < b.id
  end)

  local shares = {}
  if #nodes == 0 or total <= 0 then return shares end

  -- the level the k emptiest nodes reach together
  local k, sum, level = 0, 0, 0
  repeat
    k = k + 1
    sum = sum + nodes[k].n
    level = (total + sum) / k
  until k == #nodes or level <= nodes[k + 1].n

  local given = 0
  for i = 1, k do
    local s = math.floor(level - nodes[i].n)
    shares[nodes[i].id] = s
    given = given + s
  end
  for i = 1, total - given do  -- the rounding remainder, emptiest first
    local id = nodes[(i - 1) % k + 1].id
    shares[id] = shares[id] + 1
  end
  return shares
end

return M
