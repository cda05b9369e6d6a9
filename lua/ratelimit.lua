--- ratelimit: a token bucket, to pace moves of calls between nodes.
--
-- Moving thousands of calls at once is a re-INVITE storm; a policy asks
-- the bucket how many it may move now and moves only that many. Time is
-- passed in (milliseconds, e.g. rehome.now()) so the bucket is a plain
-- value that tests can drive.
--
--   local bucket = require("ratelimit").new{rate = 50, burst = 100}
--   local n = bucket:take(wanted, rehome.now())
--
-- Across a reload, hand the bucket's state over (docs/policies.md), so a
-- new version does not start with a full burst in the middle of one:
--
--   on_unload = function() return {bucket = bucket:state()} end,
--   on_load = function(st)
--     if st then bucket = ratelimit.new{rate = 50, state = st.bucket} end
--   end,

local M = {}
local Bucket = {}
Bucket.__index = Bucket

--- rate: tokens per second (> 0); burst: bucket size (default rate);
-- state (optional): what bucket:state() returned, to go on from there.
function M.new(opts)
  opts = opts or {}
  local rate = opts.rate
  assert(type(rate) == "number" and rate > 0, "rate must be a positive number")
  local burst = opts.burst or rate
  assert(type(burst) == "number" and burst >= 1, "burst must be at least 1")
  local b = setmetatable({rate = rate, burst = burst, tokens = burst}, Bucket)
  local st = opts.state
  if type(st) == "table" and type(st.tokens) == "number" then
    b.tokens = math.min(burst, math.max(0, st.tokens))
    if type(st.last) == "number" then b.last = st.last end
  end
  return b
end

--- The bucket as plain data (tokens left, time of the last refill), for
-- new{state=} in the next version of the policy.
function Bucket:state()
  return {tokens = self.tokens, last = self.last}
end

local function refill(b, now)
  if b.last and now > b.last then
    b.tokens = math.min(b.burst, b.tokens + (now - b.last) * b.rate / 1000)
  end
  if not b.last or now > b.last then b.last = now end
end

--- Whole tokens available at time now (ms).
function Bucket:available(now)
  refill(self, now)
  return math.floor(self.tokens)
end

--- Take up to n tokens at time now (ms); returns how many were granted.
function Bucket:take(n, now)
  local granted = math.min(n, self:available(now))
  if granted < 0 then granted = 0 end
  self.tokens = self.tokens - granted
  return granted
end

return M
