-- GCRA rate limit of one destination, shared by every instance.
-- KEYS[1]  hash {ratelimit:CHANNEL:DEST}: tat (theoretical arrival time of
--          the next message, µs), n / c (the next free retry slot of
--          non-critical / critical messages, µs), T (the interval they
--          were computed with)
-- ARGV[1]  now in µs; "0" = the server's TIME
-- ARGV[2]  T: µs between messages (1e6 / per_second)
-- ARGV[3]  burst
-- ARGV[4]  reserve: tokens of the burst only critical messages may take
-- ARGV[5]  "1" critical
-- ARGV[6]  "1" hold: do not take a token, only give a retry slot (a
--          critical message of this instance is waiting for one)
-- ARGV[7]  horizon µs: no slot is promised this far ahead or further
-- Returns {1, 0} when the message may go now (a token taken), else
-- {0, wait µs}: a retry slot. Slots are handed out one T apart, so a
-- backlog comes back spread at the rate, not all at once. A message
-- whose slot would lie beyond the horizon gets no slot ({0, horizon}: it
-- asks again then), so at most horizon x rate messages hold slots, and a
-- raised limit reaches the rest of a backlog within a horizon.
local now = tonumber(ARGV[1])
if now <= 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local T = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local reserve = tonumber(ARGV[4])
local critical = ARGV[5] == '1'
local hold = ARGV[6] == '1'
local horizon = tonumber(ARGV[7])
-- Times are µs since 1970 (about 1.8e15): exact in a Lua number, but
-- tostring would round them, so they are written with %.0f.
local function us(x)
  return string.format('%.0f', x)
end

local st = redis.call('HMGET', KEYS[1], 'tat', 'n', 'c', 'T')
local tat = math.max(tonumber(st[1]) or now, now)
local oldT = tonumber(st[4])
if oldT and oldT ~= T then
  -- A changed limit: the messages the bucket owes are counted again at
  -- the new interval, and slots computed with the old one are forgotten.
  tat = now + (tat - now) / oldT * T
  st[2], st[3] = false, false
  redis.call('HDEL', KEYS[1], 'n', 'c')
  redis.call('HSET', KEYS[1], 'tat', us(tat), 'T', us(T))
end
local limit = burst
if not critical then
  limit = burst - reserve
end
-- The earliest time this class may take a token: the bucket then keeps
-- burst - limit tokens (the reserve, for non-critical messages).
local earliest = tat + T - limit * T
if hold then
  earliest = math.max(earliest, now + T)
end
local allowed, wait = 0, 0
if earliest <= now then
  tat = tat + T
  redis.call('HSET', KEYS[1], 'tat', us(tat), 'T', us(T))
  allowed = 1
else
  local field, idx = 'n', 2
  if critical then
    field, idx = 'c', 3
  end
  local due = math.max(tonumber(st[idx]) or 0, earliest)
  if due - now >= horizon then
    wait = horizon
  else
    redis.call('HSET', KEYS[1], field, us(due + T), 'T', us(T))
    wait = due - now
  end
end
-- The key lives as long as anything in it is ahead of now, plus a minute.
local last = now
for _, v in ipairs(redis.call('HMGET', KEYS[1], 'tat', 'n', 'c')) do
  last = math.max(last, tonumber(v) or 0)
end
redis.call('PEXPIRE', KEYS[1], math.ceil((last - now) / 1000) + 60000)
return {allowed, math.ceil(wait)}
