package redisstore

import "github.com/redis/go-redis/v9"

// The queue's Lua scripts (queue.go has the key layout). Every queue key
// a script touches is under one shard's base name, <prefix>q{<n>}:, and
// the enqueue script also writes the dedupe record. Not every key is
// declared in KEYS: the scripts derive some names from the shard's
// indexes on the server (the items and payloads that Lease finds due, the
// item holding an order key's lease or heading its set in fix_order, the
// order set a redelivered item returns to), which the caller cannot know
// before the script runs. Redis allows that on one server, and only
// there: on a Cluster a script may touch only keys of the slots it
// declared, and a resharding could move an undeclared one away. That is
// one more reason why the queue runs on one server only (a URL or a
// Sentinel-managed primary; refused on a Cluster, queue.go). The base is
// passed as an argument.
//
// An item is a HASH:
//
//	v  format version, "1"
//	s  state: 1 pending, 2 leased, 3 delivered, 4 business_rejected, 5 dead
//	o  order key (escaped as a key field)
//	q  seq (arrival order within the shard, INCR)
//	e  enqueued, Unix microseconds (server clock)
//	R  redelivered (absent unless redelivered)
//	u  due
//	n  attempts
//	t  lease token (16 hex digits; absent before the first lease)
//	x  lease expiry
//	b  last status
//	r  last reason
//	f  finished (absent while queued)
//	S  the nonce of the settlement that last settled it (settleScript)
//	N  the nonce of the redelivery that made it pending (absent unless
//	   redelivered; redeliverScript)
//
// Items return as {member, v, s, o, q, e, R, u, n, t, x, b, r, f, pttl,
// has_payload, payload} (payload false unless asked for). The scripts
// start with luaPrelude (now_us, fmt).
const queuePrelude = luaPrelude + `
local ITEM = {'v', 's', 'o', 'q', 'e', 'R', 'u', 'n', 't', 'x', 'b', 'r', 'f'}

local function item_reply(base, member, with_payload)
  local ik = base .. 'i:' .. member
  local out = {member}
  local h = redis.call('HMGET', ik, unpack(ITEM))
  for i = 1, #ITEM do
    out[#out + 1] = h[i]
  end
  out[#out + 1] = tostring(redis.call('PTTL', ik))
  local bk = base .. 'b:' .. member
  if with_payload then
    local p = redis.call('GET', bk)
    out[#out + 1] = p and '1' or '0'
    out[#out + 1] = p
  else
    out[#out + 1] = tostring(redis.call('EXISTS', bk))
    out[#out + 1] = false
  end
  return out
end

-- fix_order puts order key o into the due index where it is next
-- leasable: at its leased item's lease expiry while one is leased, else
-- at its lowest-seq item's due time; out of the index when it has no
-- queued item.
local function fix_order(base, o)
  local lk = base .. 'l'
  local holder = redis.call('HGET', lk, o)
  local due = nil
  if holder then
    local h = redis.call('HMGET', base .. 'i:' .. holder, 's', 'x')
    if h[1] == '2' then
      due = tonumber(h[2])
    else
      redis.call('HDEL', lk, o)
    end
  end
  if not due then
    local head = redis.call('ZRANGE', base .. 'o:' .. o, 0, 0)
    if #head == 0 then
      redis.call('ZREM', base .. 'due', o)
      return
    end
    due = tonumber(redis.call('HGET', base .. 'i:' .. head[1], 'u'))
  end
  redis.call('ZADD', base .. 'due', fmt(due), o)
end
`

// enqueueScript writes an item and completes its claim, atomically.
// KEYS record, item, body, order set, seq, arrival, due, lease holders;
// ARGV token, completion nonce, result code, outcome, backend status,
// retention (ms) (as completeScript), then base, member, order key,
// payload. Statuses as completeScript: ok (with 'queued', or 'exists'
// when an item for the key was stored already and is kept; nothing more
// when this very completion was applied by an attempt whose reply was
// lost), lost (nothing written), corrupt.
var enqueueScript = redis.NewScript(queuePrelude + `
local gate = completion_gate(KEYS[1], ARGV[1], ARGV[2], ARGV[6])
if gate then
  return gate
end
local base, member, o = ARGV[7], ARGV[8], ARGV[9]
local now = now_us()
local added = 'exists'
if redis.call('EXISTS', KEYS[2]) == 0 then
  local seq = redis.call('INCR', KEYS[5])
  redis.call('HSET', KEYS[2], 'v', '1', 's', '1', 'o', o, 'q', tostring(seq), 'e', fmt(now), 'u', fmt(now), 'n', '0', 'b', '0', 'r', '')
  redis.call('SET', KEYS[3], ARGV[10])
  redis.call('ZADD', KEYS[4], seq, member)
  redis.call('ZADD', KEYS[6], fmt(now), member)
  fix_order(base, o)
  added = 'queued'
end
redis.call('HSET', KEYS[1], 's', '2', 'd', fmt(now), 'o', ARGV[4], 'b', ARGV[5], 'r', ARGV[3], 'n', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {'ok', added}
`)

// leaseScript: KEYS due, lease holders; ARGV base, max, lease (µs), then
// max tokens. Reply {'ok', now, item...}. The members a call leases are
// kept for the lease's length in its journal, L:<first token> (a LIST):
// a call that finds its journal is the same call run again (go-redis
// sends it again with the same tokens when the reply of an attempt that
// ran was lost), and it reports the items the attempt leased, still
// leased under one of its tokens, instead of leasing anew (which would
// find them busy and leave them leased under tokens nobody holds).
var leaseScript = redis.NewScript(queuePrelude + `
local base, max, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_us()
local out = {'ok', fmt(now)}
local journal = base .. 'L:' .. ARGV[4]
local earlier = redis.call('LRANGE', journal, 0, -1)
if #earlier > 0 then
  local mine = {}
  for i = 4, 3 + max do
    mine[ARGV[i]] = true
  end
  for _, m in ipairs(earlier) do
    local h = redis.call('HMGET', base .. 'i:' .. m, 's', 't')
    if h[1] == '2' and mine[h[2]] then
      out[#out + 1] = item_reply(base, m, true)
    end
  end
  return out
end
local orders = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', fmt(now), 'LIMIT', 0, max)
local used = 0
for _, o in ipairs(orders) do
  local busy = false
  local holder = redis.call('HGET', KEYS[2], o)
  if holder then
    local hk = base .. 'i:' .. holder
    local h = redis.call('HMGET', hk, 's', 'x')
    if h[1] == '2' and tonumber(h[2]) > now then
      busy = true
    else
      if h[1] == '2' then
        redis.call('HSET', hk, 's', '1')
      end
      redis.call('HDEL', KEYS[2], o)
    end
  end
  if not busy then
    local head = redis.call('ZRANGE', base .. 'o:' .. o, 0, 0)
    if #head == 1 then
      local ik = base .. 'i:' .. head[1]
      if tonumber(redis.call('HGET', ik, 'u')) <= now then
        used = used + 1
        redis.call('HINCRBY', ik, 'n', 1)
        redis.call('HSET', ik, 's', '2', 't', ARGV[3 + used], 'x', fmt(now + lease))
        redis.call('HSET', KEYS[2], o, head[1])
        redis.call('RPUSH', journal, head[1])
        out[#out + 1] = item_reply(base, head[1], true)
      end
    end
  end
  fix_order(base, o)
end
if used > 0 then
  redis.call('PEXPIRE', journal, math.ceil(lease / 1000))
end
return out
`)

// settleScript finishes, retries or gives back a leased item. KEYS item,
// body, lease holders, arrival, dead, order set, finished; ARGV base,
// member, order key, token, mode (ack, reject, dead, retry, unlease),
// status, reason, pause (µs, retry) or payload keep (ms, dead), retention
// (ms), API (escaped), the call's nonce. Ack and reject raise the API's seq in the order
// key's finished hash (field: the escaped API) and make it last at least
// the retention; dead raises its ':dead' field (µs; no escaped API holds
// a ':') to the payload's expiry, and every settlement keeps the hash
// until then at least (the Badger store's noteFinished says why).
// Statuses: ok, lost (not leased under token). The item keeps the nonce
// of the settlement that settled it (field S): an item no longer leased,
// under token and with the call's nonce, was settled by this very call,
// whose reply was lost and which go-redis runs again: ok, after setting S
// to the value it has. That write changes nothing, but it is a write:
// the WAIT or WAITAOF that scriptAndWait sends after the script waits
// for the last write of its own connection (Redis 7.2+, Valkey), and the
// earlier run wrote on the connection go-redis gave up on, so without a
// write of its own the re-run would be confirmed durable at once, the
// settlement itself perhaps not yet replicated or fsynced. Any write
// does: it is replicated and appended after the earlier run's.
var settleScript = redis.NewScript(queuePrelude + `
local base, member, o, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
local h = redis.call('HMGET', KEYS[1], 's', 't', 'o', 'n', 'q', 'S')
if h[1] ~= '2' or h[2] ~= ARGV[4] or h[3] ~= o then
  if h[2] == ARGV[4] and h[3] == o and h[6] == ARGV[11] then
    redis.call('HSET', KEYS[1], 'S', ARGV[11])
    return {'ok'}
  end
  return {'lost'}
end
redis.call('HSET', KEYS[1], 'S', ARGV[11])
local now = now_us()
redis.call('HDEL', KEYS[3], o)
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', fmt(now))
if mode == 'retry' then
  redis.call('HSET', KEYS[1], 's', '1', 'u', fmt(now + tonumber(ARGV[8])), 'b', ARGV[6], 'r', ARGV[7])
elseif mode == 'unlease' then
  local n = tonumber(h[4]) - 1
  if n < 0 then n = 0 end
  redis.call('HSET', KEYS[1], 's', '1', 'n', tostring(n))
else
  local st = ({ack = '3', reject = '4', dead = '5'})[mode]
  redis.call('HSET', KEYS[1], 's', st, 'f', fmt(now), 'b', ARGV[6], 'r', ARGV[7])
  redis.call('PEXPIRE', KEYS[1], ARGV[9])
  local ttl = tonumber(ARGV[9])
  local dead_until = tonumber(redis.call('HGET', KEYS[7], ':dead') or '0')
  if mode == 'dead' then
    redis.call('PEXPIRE', KEYS[2], ARGV[8])
    redis.call('ZADD', KEYS[5], fmt(now + tonumber(ARGV[8]) * 1000), member)
    ttl = tonumber(ARGV[8])
    if now + ttl * 1000 > dead_until then
      redis.call('HSET', KEYS[7], ':dead', fmt(now + ttl * 1000))
    end
  else
    redis.call('DEL', KEYS[2])
    local done = redis.call('HGET', KEYS[7], ARGV[10])
    if not done or tonumber(done) < tonumber(h[5]) then
      redis.call('HSET', KEYS[7], ARGV[10], h[5])
    end
    if (dead_until - now) / 1000 > ttl then
      ttl = math.ceil((dead_until - now) / 1000)
    end
  end
  if redis.call('PTTL', KEYS[7]) < ttl then
    redis.call('PEXPIRE', KEYS[7], fmt(ttl))
  end
  redis.call('ZREM', KEYS[6], member)
  redis.call('ZREM', KEYS[4], member)
end
fix_order(base, o)
return {'ok'}
`)

// redeliverScript makes a dead letter pending again. KEYS item, body,
// arrival, dead; ARGV base, member, the call's nonce, then the
// overtaking APIs (escaped). Statuses: ok, absent, not_dead, overtaken (a
// later item of the order key, of an overtaking API, is leased or in its
// finished hash), expired. The item keeps the nonce of the redelivery
// that made it pending (field N): finding it is this very call run again
// after its reply was lost, which is ok, after setting N to the value it
// has, so that the wait after the script covers the earlier run's write
// (settleScript says why).
var redeliverScript = redis.NewScript(queuePrelude + `
local base, member = ARGV[1], ARGV[2]
local h = redis.call('HMGET', KEYS[1], 's', 'o', 'q', 'e', 'N')
if not h[1] then
  return {'absent'}
end
if h[1] ~= '5' then
  if h[5] == ARGV[3] then
    redis.call('HSET', KEYS[1], 'N', ARGV[3])
    return {'ok'}
  end
  return {'not_dead'}
end
if #ARGV > 3 then
  local seq = tonumber(h[3])
  local over = {}
  for i = 4, #ARGV do
    over[ARGV[i]] = true
  end
  local holder = redis.call('HGET', base .. 'l', h[2])
  if holder then
    local l = redis.call('HMGET', base .. 'i:' .. holder, 's', 'q')
    local api = string.match(holder, '^[^:]*:([^:]*):')
    if l[1] == '2' and tonumber(l[2]) > seq and over[api] then
      return {'overtaken'}
    end
  end
  local done = redis.call('HGETALL', base .. 'f:' .. h[2])
  for i = 1, #done, 2 do
    if over[done[i]] and tonumber(done[i + 1]) > seq then
      return {'overtaken'}
    end
  end
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {'expired'}
end
local now = now_us()
redis.call('HSET', KEYS[1], 's', '1', 'n', '0', 'R', fmt(now), 'u', fmt(now), 'N', ARGV[3])
redis.call('HDEL', KEYS[1], 'f')
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
redis.call('ZREM', KEYS[4], member)
redis.call('ZADD', base .. 'o:' .. h[2], h[3], member)
redis.call('ZADD', KEYS[3], h[4], member)
fix_order(base, h[2])
return {'ok'}
`)

// getItemScript reads one item: {'found', now, item} or {'absent'}. KEYS
// item; ARGV base, member.
var getItemScript = redis.NewScript(queuePrelude + `
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'absent'}
end
return {'found', fmt(now_us()), item_reply(ARGV[1], ARGV[2], false)}
`)

// queueStatsScript: KEYS arrival, dead. Reply {now, queued, oldest member
// or false, its score or false, live dead letters}.
var queueStatsScript = redis.NewScript(queuePrelude + `
local now = now_us()
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {fmt(now), redis.call('ZCARD', KEYS[1]), oldest[1] or false, oldest[2] or false,
  redis.call('ZCOUNT', KEYS[2], '(' .. fmt(now), '+inf')}
`)

// deadListScript lists the shard's live dead letters (members). KEYS dead.
var deadListScript = redis.NewScript(queuePrelude + `
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. fmt(now_us()), '+inf')
`)
