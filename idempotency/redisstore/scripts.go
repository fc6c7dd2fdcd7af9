package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts. Each touches exactly one key, KEYS[1] (so they run
// unchanged on Redis Cluster), and takes "now" from the server (TIME), never
// from the caller: every gateway sharing the Redis agrees on when a lease
// ends. Redis runs a script atomically, so a script's read and its write are
// one step that no other client can interleave with.
//
// A record is a HASH (field names and meaning in record.go). Scripts that
// find a record return
//
//	{status, now, pttl, v, s, f, t, c, l, d, o, b, r, n}
//
// with now the server time in Unix microseconds, pttl the key's remaining
// time to live in milliseconds (-1: none) and the record's fields in that
// order (nil for a field the record lacks). A key that holds something that
// is not a record of this format gives {"corrupt", reason}; the scripts
// never overwrite or delete such a key.
//
// Numbers cross the Lua boundary as decimal strings. Lua 5.1 numbers are
// doubles: microsecond timestamps (about 1.8e15) are exact below 2^53, and
// string.format('%.0f') prints them without an exponent. Tokens and nonces
// (64-bit) are never converted to numbers: they are compared as fixed-width
// hex strings.
//
// get_record checks every field that decodeRecord (record.go) checks, so a
// record the Go side would call corrupt is never taken over by a claim
// (its lease may look expired) or completed: the scripts leave such a key
// alone and report it.

// luaPrelude holds the helpers every script starts with.
const luaPrelude = `
local FIELDS = {'v', 's', 'f', 't', 'c', 'l', 'd', 'o', 'b', 'r', 'n'}

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function fmt(n)
  return string.format('%.0f', n)
end

-- dec returns the value of a plain decimal string of at most 16 digits,
-- or nil.
local function dec(s)
  if type(s) ~= 'string' or #s == 0 or #s > 16 or not string.match(s, '^%d+$') then
    return nil
  end
  return tonumber(s)
end

-- stamp returns the value of a timestamp field (a positive dec), or nil.
local function stamp(s)
  local n = dec(s)
  if n == nil or n == 0 then
    return nil
  end
  return n
end

-- hex16 reports whether s is a token or nonce: 16 lower-case hex digits,
-- not all zero.
local function hex16(s)
  return type(s) == 'string' and #s == 16 and string.match(s, '^[0-9a-f]+$') ~= nil and s ~= '0000000000000000'
end

local function text(s, max)
  return type(s) == 'string' and #s >= 1 and #s <= max
end

-- get_record returns the record at key as a table (raw: the fields in FIELDS
-- order; v, s, f, t, n: strings; lease: the lease expiry in microseconds),
-- nil when the key does not exist, or false and a reason when the key holds
-- anything that is not a record of this format.
local function get_record(key)
  local typ = redis.call('TYPE', key)['ok']
  if typ == 'none' then
    return nil
  end
  if typ ~= 'hash' then
    return false, 'key holds a ' .. typ .. ', not a hash'
  end
  local h = redis.call('HMGET', key, unpack(FIELDS))
  local r = {raw = h, v = h[1], s = h[2], f = h[3], t = h[4], n = h[11]}
  if r.v ~= '1' then
    return false, 'unknown format version'
  end
  if type(r.f) ~= 'string' or #r.f ~= 32 then
    return false, 'bad fingerprint'
  end
  if not hex16(r.t) then
    return false, 'bad token'
  end
  r.lease = stamp(h[6])
  if stamp(h[5]) == nil or r.lease == nil then
    return false, 'bad claim times'
  end
  local nfields = 6
  if r.s == '2' then
    nfields = 11
    local status = dec(h[9])
    if stamp(h[7]) == nil or not text(h[8], 64) or status == nil or status > 999 or not text(h[10], 64) or not hex16(r.n) then
      return false, 'bad answer'
    end
  elseif r.s ~= '1' then
    return false, 'unknown state'
  end
  if redis.call('HLEN', key) ~= nfields then
    return false, 'unexpected fields'
  end
  return r
end

-- completion_gate checks that key is in flight under token for a
-- completion with nonce (ms: retention): nil when the caller goes on and
-- completes it, else the script's reply: ok when this very completion was
-- applied by an attempt whose reply was lost (the TTL is set once more, a
-- write that a WAITAOF after the script covers), lost, or corrupt.
local function completion_gate(key, token, nonce, ms)
  local r, why = get_record(key)
  if r == false then
    return {'corrupt', why}
  end
  if not r or r.t ~= token then
    return {'lost'}
  end
  if r.s == '2' then
    if r.n == nonce then
      redis.call('PEXPIRE', key, ms)
      return {'ok'}
    end
    return {'lost'}
  end
  return nil
end

local function reply(status, now, key, r)
  local out = {status, fmt(now), tostring(redis.call('PTTL', key))}
  for i = 1, #FIELDS do
    out[#out + 1] = r.raw[i]
  end
  return out
end
`

// claimScript claims KEYS[1].
//
// ARGV: fingerprint (32 bytes), the new token (16 hex digits), lease (µs),
// retention (ms).
//
// Statuses: conflict (another fingerprint, whatever the state), done,
// in_flight (a live lease under another token), claimed (the key was absent
// or its lease had ended: a fresh record is written under the new token and
// kept for retention). A record already in flight under the new token is this
// very claim, written by an attempt whose reply was lost (the client retries
// after a broken connection): it is reported as claimed again, unchanged.
var claimScript = redis.NewScript(luaPrelude + `
local now = now_us()
local r, why = get_record(KEYS[1])
if r == false then
  return {'corrupt', why}
end
if r then
  if r.f ~= ARGV[1] then
    return reply('conflict', now, KEYS[1], r)
  end
  if r.s == '2' then
    return reply('done', now, KEYS[1], r)
  end
  if r.t == ARGV[2] then
    return reply('claimed', now, KEYS[1], r)
  end
  if now < r.lease then
    return reply('in_flight', now, KEYS[1], r)
  end
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'v', '1', 's', '1', 'f', ARGV[1], 't', ARGV[2],
  'c', fmt(now), 'l', fmt(now + tonumber(ARGV[3])))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return reply('claimed', now, KEYS[1], get_record(KEYS[1]))
`)

// completeScript completes the claim of KEYS[1].
//
// ARGV: token, completion nonce (16 hex digits each), result code, outcome,
// backend status, retention (ms).
//
// Statuses: ok (the record is done now and kept for retention from now),
// lost (absent, or under another token, or done by another Complete). A done
// record under the same token and nonce is this very completion, applied by
// an attempt whose reply was lost: ok again, with the TTL set once more (a
// write, so that a WAITAOF after the script also covers the earlier
// attempt's write, which the append-only file holds before this one).
var completeScript = redis.NewScript(luaPrelude + `
local gate = completion_gate(KEYS[1], ARGV[1], ARGV[2], ARGV[6])
if gate then
  return gate
end
redis.call('HSET', KEYS[1], 's', '2', 'd', fmt(now_us()), 'o', ARGV[4], 'b', ARGV[5], 'r', ARGV[3], 'n', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {'ok'}
`)

// releaseScript deletes KEYS[1] if it is in flight under ARGV[1] (the
// token). Statuses: released, or kept (absent, done, or another token).
var releaseScript = redis.NewScript(luaPrelude + `
local r, why = get_record(KEYS[1])
if r == false then
  return {'corrupt', why}
end
if r and r.s == '1' and r.t == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {'released'}
end
return {'kept'}
`)

// getScript reads KEYS[1]: found with the record, absent, or corrupt. It
// writes nothing. It is a script rather than HGETALL and PTTL so that the
// fields, the time to live and the server time come from one instant.
var getScript = redis.NewScript(luaPrelude + `
local r, why = get_record(KEYS[1])
if r == false then
  return {'corrupt', why}
end
if not r then
  return {'absent'}
end
return reply('found', now_us(), KEYS[1], r)
`)

// probeScript writes KEYS[1], the probe key, expiring after ARGV[1]
// milliseconds: a write of no record, whose WAITAOF or WAIT tells whether
// a completion made now would be confirmed. It uses the commands the
// record scripts use (a hash), so an ACL that lets those run lets it run.
// Status: ok.
var probeScript = redis.NewScript(`
redis.call('HSET', KEYS[1], 'probe', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return {'ok'}
`)

// touchScript rewrites the expiry of KEYS[1], a done record, as it is: a
// write whose WAITAOF or WAIT covers everything written before it (the
// record's completion, and the queue item of an enqueue). Statuses: ok,
// or absent (no done record with an expiry).
var touchScript = redis.NewScript(luaPrelude + `
local r, why = get_record(KEYS[1])
if r == false then
  return {'corrupt', why}
end
local pttl = redis.call('PTTL', KEYS[1])
if not r or r.s ~= '2' or pttl <= 0 then
  return {'absent'}
end
redis.call('PEXPIRE', KEYS[1], pttl)
return {'ok'}
`)
