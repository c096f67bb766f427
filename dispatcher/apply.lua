-- Apply one case event atomically.
-- KEYS[1] case hash, KEYS[2] the event's idempotency key.
-- ARGV: 1 event id, 2 type, 3 version (0 = none), 4 occurred_at ms,
--       5 level (0 = none), 6-9 municipality, province, region, unit,
--       10 idempotency ttl ms, 11-14 relocation target (muni, prov, region, unit),
--       15 internal (1 = dispatcher-made event: no ordering, no state change)
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
-- Returns {dup, stale, from, to, moved, prev muni, prev prov, prev region,
--          prev unit, muni, prov, region, unit, active, version, last ms,
--          checkin ms}; the same array is kept under KEYS[2] so a redelivered
-- event gets its original outcome back (with dup = 1).
local seen = redis.call('GET', KEYS[2])
if seen then
  local r = cjson.decode(seen)
  r[1] = '1'
  return r
end

local c = redis.call('HMGET', KEYS[1], 'level', 'muni', 'prov', 'region', 'unit', 'active',
  'version', 'last_ms', 'checkin_ms', 'lv_v', 'lv_ms', 'loc_v', 'loc_ms', 'act_v', 'act_ms')
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

if not internal then
  redis.call('HSET', KEYS[1], 'level', level, 'muni', muni, 'prov', prov, 'region', region,
    'unit', unit, 'active', active, 'version', version, 'last_ms', last_ms,
    'checkin_ms', checkin_ms, 'lv_v', f.lv[1], 'lv_ms', f.lv[2], 'loc_v', f.loc[1],
    'loc_ms', f.loc[2], 'act_v', f.act[1], 'act_ms', f.act[2])
  if stale then redis.call('HINCRBY', KEYS[1], 'stale_count', 1) end
end

local r = {'0', stale and '1' or '0', tostring(from), tostring(level), moved and '1' or '0',
  pmuni, pprov, pregion, punit, muni, prov, region, unit, active,
  tostring(version), tostring(last_ms), tostring(checkin_ms)}
redis.call('SET', KEYS[2], cjson.encode(r), 'PX', ARGV[10])
return r
