--[[
media_failover.lua - a media relay that dies loses no call.

When to use: two or more `media_relay` lines (rtpengines). A relay that
stops answering ng ping is down; every node then moves the media of the
calls it serves off it: each call's media goes to the relay that is up
with the fewest calls, and both legs are re-INVITEd with that relay's SDP
(`rehome.move_media`). Every node runs this policy, and each moves only
its own calls, so nothing needs to be agreed between nodes.

A move that leaves calls behind (a leg that did not answer its re-INVITE
in time, no relay up yet) is tried again RETRY_MS later, while the relay
is still down. When no relay is up, nothing can be done: the calls keep
their media on the dead relay until one comes back.

Combine it with a signalling policy by merging the hooks (see
docs/media.md).
]]

local rehome = require "rehome"

local RETRY_MS = 2000       -- again after a move that left calls behind
local RATE = nil            -- dialogs per second; nil: rehome_rate

local down = {}             -- relays seen down, still to empty

local function best_relay(except)
  local best
  for _, r in ipairs(rehome.relays()) do
    if r.state == "up" and r.relay ~= except and
       (not best or r.calls < best.calls) then
      best = r
    end
  end
  return best and best.relay
end

local function empty(relay)
  if not down[relay] then return end
  local to = best_relay(relay)
  if not to then
    rehome.log("warn", "media_failover: no relay up to take the calls of "
               .. relay)
    rehome.after(RETRY_MS, function() empty(relay) end)
    return
  end
  rehome.log("info", "media_failover: moving the calls of " .. relay ..
             " to " .. to)
  local ok, err = rehome.move_media{
    from = relay, to = to, rate = RATE,
    done = function(done_ok, info)
      if not done_ok or (info.failed or 0) > 0 then
        rehome.after(RETRY_MS, function() empty(relay) end)
      end
    end,
  }
  if not ok then
    rehome.log("warn", "media_failover: " .. relay .. ": " .. tostring(err))
  end
end

return {
  on_relay_down = function(relay)
    down[relay] = true
    empty(relay)
  end,
  on_relay_up = function(relay) down[relay] = nil end,
}
