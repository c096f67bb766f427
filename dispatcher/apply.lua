-- Apply one case event atomically.
-- KEYS[1] case hash, KEYS[2] the event's idempotency key.
-- ARGV: 1 event id, 2 type, 3 version (0 = none), 4 occurred_at ms,
--       5 level (0 = none), 6-9 municipality, province, region, unit,
--       10 idempotency ttl ms, 11-14 relocation target (muni, prov, region, unit),
--       15 internal (1 = dispatcher-made event: no ordering, no state change),
--       16-19 check-in period + grace ms per level (bajo..extremo),
--       20-23 re-assessment period ms per level, 24 incident re-assessment due-by ms (0 = none),
--       25 the due time ms an internal timer event reports (0 = none),
--       26 '1' to keep the outcome as the JSON array (REDIS_WRITE_FORMAT=previous)
--
-- Order is kept per field: the level, the location (jurisdiction + unit)
-- and the active flag each remember the version (or, without versions, the
-- time) of the event that last set them, and only a newer event changes
-- them. So a late risk assessment still raises the level when nothing newer
-- set it, and an old one never downgrades a newer level. An event that
-- carries state (a level, a relocation, opening or closing) and could not
-- apply it because something newer had is recorded as stale. Events that
-- report facts (alarms, breaches, check-ins, releases...) are never stale:
-- a late bracelet alarm still happened and must still alert.
--
-- Deadlines: an active case with a level must see police contact by
-- base + period + grace, where base is the later of the last check-in and
-- the level's last change (so a rise to extremo shortens it at once), and
-- be re-assessed by the level's change + its period (or an incident's
-- due-by, if sooner). Each missed deadline that fired moves the next
-- reminder one period on, until the base changes. A closed case has none.
-- Catch-up by case, not by period: a timer that fires more than a period
-- late (the service was down) counts every period it covers in one event
-- (returned as missed, since), and the next deadline counts from the
-- firing, so a case that missed three periods gets one alert saying so,
-- not three, nor one per period since the outage began.
-- A timer event is stale unless the deadline it reports is still the
-- case's: a check-in recorded just before the deadline cancels the miss.
--
-- Returns {dup, stale, from, to, moved, prev muni, prev prov, prev region,
--          prev unit, muni, prov, region, unit, active, version, last ms,
--          checkin ms, checkin due ms, reassessment due ms, check-in base ms,
--          periods missed (timer events; 0 = none), first missed deadline ms,
--          whether the case had a deadline before the event (1/0)},
-- as one string when the outcome has a compact record (see reply below),
-- else as that array; the same outcome
-- is kept under KEYS[2] (compact, see encode_outcome) so a redelivered
-- event gets its original outcome back (with dup = 1), except for the
-- deadlines, which are the case's current ones: they are written back to the
-- timer sets, and an old value would move a deadline back or clear it.
local fields = {'level', 'muni', 'prov', 'region', 'unit', 'active',
  'version', 'last_ms', 'checkin_ms', 'lv_v', 'lv_ms', 'loc_v', 'loc_ms', 'act_v', 'act_ms',
  'ck_due', 'ra_due', 'ck_base', 'ck_miss', 'ra_base', 'ra_miss', 'ra_by', 'ck_from', 'ra_from'}
local c = redis.call('HMGET', KEYS[1], unpack(fields))
local exists = c[2] ~= false
local level = tonumber(c[1]) or 0
local muni, prov, region, unit = c[2] or ARGV[6], c[3] or ARGV[7], c[4] or ARGV[8], c[5] or ARGV[9]
local active = c[6] or '1'
local version, last_ms, checkin_ms = tonumber(c[7]) or 0, tonumber(c[8]) or 0, tonumber(c[9]) or 0
local f = {
  lv = {tonumber(c[10]) or 0, tonumber(c[11]) or 0},
  loc = {tonumber(c[12]) or 0, tonumber(c[13]) or 0},
  act = {tonumber(c[14]) or 0, tonumber(c[15]) or 0},
}

local ck_due, ra_due = tonumber(c[16]) or 0, tonumber(c[17]) or 0
local ck_base, ck_miss = tonumber(c[18]) or 0, tonumber(c[19]) or 0
local ra_base, ra_miss, ra_by = tonumber(c[20]) or 0, tonumber(c[21]) or 0, tonumber(c[22]) or 0
-- ck_from, ra_from: where the next deadline counts from after a catch-up
-- (0: from the base, one period per miss).
local ck_from, ra_from = tonumber(c[23]) or 0, tonumber(c[24]) or 0

local typ = ARGV[2]
local ev_v, ev_ms = tonumber(ARGV[3]), tonumber(ARGV[4])
local internal = ARGV[15] == '1'

-- newer reports whether the event may overwrite field fld.
local function newer(fld)
  if not exists then return true end
  local fv, fms = f[fld][1], f[fld][2]
  if ev_v > 0 and fv > 0 then return ev_v > fv end
  return ev_ms >= fms
end

local function take(fld)
  f[fld] = {ev_v, ev_ms}
end

-- A police contact is a fact whatever order it arrives in.
if typ == 'checkin.recorded' and ev_ms > checkin_ms then
  checkin_ms = ev_ms
end

local from = level
local pmuni, pprov, pregion, punit = muni, prov, region, unit
local moved, applied = false, false
if not internal then
  local lvl = tonumber(ARGV[5])
  if lvl > 0 and (typ == 'risk.assessed' or typ == 'case.opened') and newer('lv') then
    level = lvl
    take('lv')
    applied = true
  end
  if newer('loc') then
    if typ == 'case.relocated' then
      muni, prov, region, unit = ARGV[11], ARGV[12], ARGV[13], ARGV[14]
    else
      muni, prov, region, unit = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
    end
    -- For a case seen for the first time, "previous" is the event's own
    -- place, so a relocation still tells the old unit.
    moved = muni ~= pmuni or unit ~= punit
    take('loc')
    if typ == 'case.relocated' then applied = true end
  end
  if (typ == 'case.closed' or typ == 'case.opened' or typ == 'case.reactivated') and newer('act') then
    active = typ == 'case.closed' and '0' or '1'
    take('act')
    applied = true
  end
  if ev_v > version then version = ev_v end
  if ev_ms > last_ms then last_ms = ev_ms end
end
local carries = typ == 'risk.assessed' or typ == 'case.opened' or typ == 'case.relocated'
  or typ == 'case.closed' or typ == 'case.reactivated'
local stale = not internal and carries and not applied

-- Timer events: still the case's deadline? Then count the miss: every
-- period between the deadline and the firing. More than one means a
-- catch-up: the next deadline counts from the firing.
local timer_due = tonumber(ARGV[25])
local missed, missed_since = 0, 0
local function periods(every)
  if not every or every <= 0 or ev_ms <= timer_due then return 1 end
  return 1 + math.floor((ev_ms - timer_due) / every)
end
if typ == 'checkin.missed' then
  stale = active ~= '1' or timer_due ~= ck_due or level == 0
  if not stale then
    missed, missed_since = periods(tonumber(ARGV[15 + level])), timer_due
    if missed > 1 then ck_from, ck_miss = ev_ms, 0 else ck_miss = ck_miss + 1 end
  end
elseif typ == 'reassessment.overdue' then
  stale = active ~= '1' or timer_due ~= ra_due or level == 0
  if not stale then
    missed, missed_since = periods(tonumber(ARGV[19 + level])), timer_due
    if missed > 1 then ra_from, ra_miss = ev_ms, 0 else ra_miss = ra_miss + 1 end
  end
end

if typ == 'risk.assessed' and applied then ra_by = 0 end
local due_by = tonumber(ARGV[24])
if typ == 'incident.reported' and due_by > 0 and (ra_by == 0 or due_by < ra_by) then ra_by = due_by end

if active == '1' and level > 0 then
  local base = math.max(checkin_ms, f.lv[2])
  if base ~= ck_base then ck_base, ck_miss, ck_from = base, 0, 0 end
  local every = tonumber(ARGV[15 + level])
  ck_due = (ck_from > 0 and ck_from or base) + every * (ck_miss + 1)
  local rbase = f.lv[2]
  if rbase ~= ra_base then ra_base, ra_miss, ra_from = rbase, 0, 0 end
  local period = tonumber(ARGV[19 + level])
  ra_due = (ra_from > 0 and ra_from or rbase) + period * (ra_miss + 1)
  if ra_by > 0 and ra_miss == 0 and ra_from == 0 and ra_by < ra_due then ra_due = ra_by end
else
  ck_due, ra_due = 0, 0
end

local had_due = (tonumber(c[16]) or 0) ~= 0 or (tonumber(c[17]) or 0) ~= 0
local r = {'0', stale and '1' or '0', tostring(from), tostring(level), moved and '1' or '0',
  pmuni, pprov, pregion, punit, muni, prov, region, unit, active,
  tostring(version), tostring(last_ms), tostring(checkin_ms), tostring(ck_due), tostring(ra_due),
  tostring(ck_base), tostring(missed), tostring(missed_since), had_due and '1' or '0'}
-- The outcome kept under KEYS[2] is compact: the byte 31 (unit separator),
-- then values 2-17 and 20-23 joined by it, numbers of 0 written empty
-- (not places, 6-13), the previous place (6-9) empty unless the event
-- moved the case (the reader ignores it then), neither the dup flag nor
-- the deadlines (a duplicate gets the case's current ones). About 50-100 bytes where the JSON array
-- took 150-200; built by table.concat and string.gsub, so it costs no
-- more than cjson.encode. Earlier versions kept the JSON array ('[...'):
-- still read. An outcome whose place holds the separator is kept as JSON.
-- A later format must start with another byte than 31.
local SEP = '\31'
local ZERO = SEP .. '0%f[%z' .. SEP .. ']' -- a field that is 0

local function encode_outcome(o)
  if ARGV[26] == '1' or string.find(table.concat(o, '', 6, 13), SEP, 1, true) then return cjson.encode(o) end
  local places -- the previous place only when the event moved the case
  if o[5] == '1' then places = table.concat(o, SEP, 6, 13) else places = string.rep(SEP, 4) .. table.concat(o, SEP, 10, 13) end
  local head = string.gsub(SEP .. table.concat(o, SEP, 2, 5), ZERO, SEP)
  local tail = string.gsub(SEP .. table.concat(o, SEP, 14, 17) .. SEP .. table.concat(o, SEP, 20, 23), ZERO, SEP)
  return head .. SEP .. places .. tail
end

-- The reply is the compact record itself when the outcome has one: the
-- dup flag and the case's current deadlines, then the record (which starts
-- with the separator). One string costs Redis and the caller less than an
-- array of 23 (each its own reply, its own allocation in the caller); the
-- caller (outcomeValues, state.go) splits it. An outcome kept as JSON is
-- returned as the array.
local function reply(dup, ck, ra, rec)
  return dup .. SEP .. ck .. SEP .. ra .. rec
end

-- Remember the outcome unless the event was seen: then it is a duplicate,
-- which changes nothing and gets its original outcome back (one call
-- both checks and remembers).
local record = encode_outcome(r)
local seen = redis.call('SET', KEYS[2], record, 'NX', 'GET', 'PX', ARGV[10])
if seen then
  if string.byte(seen, 1) == 31 then return reply('1', c[16] or '0', c[17] or '0', seen) end
  local o = cjson.decode(seen) -- kept as JSON (earlier versions, previous format)
  o[1] = '1'
  o[18], o[19] = c[16] or '0', c[17] or '0'
  return o
end

-- Only the fields that change are written: most events change a few of
-- the 24, and each field written costs Redis time. A bookkeeping number
-- (not the level, place or active flag) that is absent reads as 0, so a
-- new case does not write its zeros.
if not internal or typ == 'checkin.missed' or typ == 'reassessment.overdue' then
  if exists or not internal then
    local v = {level, muni, prov, region, unit, active, version, last_ms, checkin_ms,
      f.lv[1], f.lv[2], f.loc[1], f.loc[2], f.act[1], f.act[2], ck_due, ra_due,
      ck_base, ck_miss, ra_base, ra_miss, ra_by, ck_from, ra_from}
    local args = {}
    for i = 1, #v do
      local old, new = c[i], v[i]
      local write
      if type(new) == 'number' then
        if old then write = tonumber(old) ~= new else write = i == 1 or new ~= 0 end
      else
        write = old ~= new
      end
      if write then
        args[#args + 1] = fields[i]
        args[#args + 1] = new
      end
    end
    if #args > 0 then redis.call('HSET', KEYS[1], unpack(args)) end
  end
  if stale and not internal then redis.call('HINCRBY', KEYS[1], 'stale_count', 1) end
end

if string.byte(record, 1) == 31 then return reply('0', r[18], r[19], record) end
return r
