/**
 * The Lua scripts of the Redis engine. Each runs atomically on the room's shard, so a stream is never
 * seen half-written and live order (PUBLISH inside the script) equals seq order.
 *
 * Keys of a room R under prefix P: `P{R}:s` (hash: e = epoch, t = latest seq), `P{R}:h` (list of
 * entries, oldest first, `seq|storedAt|payload`), `P{R}:i:<id>` (idempotency: `epoch:seq`). The braces
 * keep a room's keys in one Redis Cluster slot.
 */

/** Shared by the stream scripts: Redis's clock, stream creation, and dropping entries older than the ttl. */
const STREAM_PRELUDE = `
local meta, list = KEYS[1], KEYS[2]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local ttl = tonumber(ARGV[2])
local epoch = redis.call('HGET', meta, 'e')
local top = 0
if epoch then
  top = tonumber(redis.call('HGET', meta, 't'))
else
  -- A stream begins (or begins again after it expired or Redis lost it): entries of an earlier life go.
  epoch = ARGV[1]
  redis.call('HSET', meta, 'e', epoch, 't', 0)
  redis.call('PEXPIRE', meta, ttl)
  redis.call('DEL', list)
end
local function trimExpired ()
  local oldest = now - ttl
  while true do
    local head = redis.call('LINDEX', list, 0)
    if not head then return end
    if tonumber(string.match(head, '^%d+|(%d+)|')) >= oldest then return end
    redis.call('LPOP', list)
  end
end
`

/**
 * KEYS: meta, list, id key (any key when there is no id). ARGV: candidate epoch, ttl ms, payload,
 * history size, idempotency ttl ms, channel ('' publishes nothing), has id ('1'). Returns
 * {epoch, seq, duplicate}.
 */
export const APPEND = STREAM_PRELUDE + `
local hasId = ARGV[7] == '1'
if hasId then
  local seen = redis.call('GET', KEYS[3])
  if seen then
    local sep = string.find(seen, ':', 1, true)
    if string.sub(seen, 1, sep - 1) == epoch then return {epoch, tonumber(string.sub(seen, sep + 1)), 1} end
  end
end
local seq = redis.call('HINCRBY', meta, 't', 1)
redis.call('PEXPIRE', meta, ttl)
local entry = seq .. '|' .. now .. '|' .. ARGV[3]
local size = tonumber(ARGV[4])
if size > 0 then
  redis.call('RPUSH', list, entry)
  redis.call('LTRIM', list, -size, -1)
  trimExpired()
  redis.call('PEXPIRE', list, ttl)
else
  -- Kept entries must end at the top: a room whose history was turned off keeps none.
  redis.call('DEL', list)
end
local idTtl = tonumber(ARGV[5])
if hasId and idTtl > 0 then redis.call('SET', KEYS[3], epoch .. ':' .. seq, 'PX', idTtl) end
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], 'm' .. epoch .. '|' .. entry) end
return {epoch, seq, 0}
`

/** KEYS: meta, list. ARGV: candidate epoch, ttl ms. Returns {epoch, top}. */
export const POSITION = STREAM_PRELUDE + `
return {epoch, top}
`

/**
 * KEYS: meta, list. ARGV: candidate epoch, ttl ms, since, limit, reverse ('1'). Returns
 * {epoch, top, entries} with entries oldest first.
 */
export const READ = STREAM_PRELUDE + `
trimExpired()
local kept = redis.call('LLEN', list)
local first = top - kept + 1
local lowest = math.max(first, tonumber(ARGV[3]) + 1)
local count = math.min(tonumber(ARGV[4]), top - lowest + 1)
if count <= 0 then return {epoch, top, {}} end
if ARGV[5] == '1' then return {epoch, top, redis.call('LRANGE', list, kept - count, kept - 1)} end
local start = lowest - first
return {epoch, top, redis.call('LRANGE', list, start, start + count - 1)}
`

/**
 * KEYS: meta, list. ARGV: candidate epoch, ttl ms, since epoch, since seq, max. Returns
 * {epoch, top, failure reason or '', entries}.
 */
export const RECOVER = STREAM_PRELUDE + `
local since = tonumber(ARGV[4])
if ARGV[3] ~= epoch or since > top then return {epoch, top, 'epoch_changed'} end
if top - since > tonumber(ARGV[5]) then return {epoch, top, 'too_many'} end
trimExpired()
local kept = redis.call('LLEN', list)
if since + 1 < top - kept + 1 then return {epoch, top, 'too_old'} end
return {epoch, top, '', redis.call('LRANGE', list, since - (top - kept), -1)}
`

/**
 * Presence of a room R: `P{R}:p` (sorted set, score = join order in Redis's microseconds, so a cursor
 * stays meaningful when the room empties and fills again), `P{R}:m` (hash client → member JSON),
 * `P{R}:x` (sorted set, score = expiry in ms) and `P{R}:u` (hash user → connections, for the count of
 * distinct users). A member lives while its node refreshes it.
 */
const PRESENCE_PRELUDE = `
local order, members, expiry, users = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local clock = redis.call('TIME')
local nowUs = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local now = math.floor(nowUs / 1000)
-- unpack() is bounded by Lua's C stack (about 8000 values): long argument lists go in slices.
local function inSlices (command, key, values, prefix)
  for first = 1, #values, 1000 do
    local slice = {}
    for i = first, math.min(first + 999, #values) do slice[#slice + 1] = values[i] end
    if prefix then redis.call(command, key, prefix, unpack(slice)) else redis.call(command, key, unpack(slice)) end
  end
end
local function forgetUser (member)
  if not member then return end
  local user = cjson.decode(member).u
  if type(user) == 'string' and redis.call('HINCRBY', users, user, -1) <= 0 then redis.call('HDEL', users, user) end
end
local function removeExpired ()
  local gone = redis.call('ZRANGEBYSCORE', expiry, '-inf', now)
  for _, client in ipairs(gone) do forgetUser(redis.call('HGET', members, client)) end
  inSlices('ZREM', order, gone)
  inSlices('HDEL', members, gone)
  inSlices('ZREM', expiry, gone)
  return gone
end
-- Join order: Redis's microseconds, one past the latest member when the clock has not moved on.
local function nextOrder ()
  local last = redis.call('ZRANGE', order, -1, -1, 'WITHSCORES')
  if last[2] and tonumber(last[2]) >= nowUs then return tonumber(last[2]) + 1 end
  return nowUs
end
local function keepFor (ms)
  redis.call('PEXPIRE', order, ms)
  redis.call('PEXPIRE', members, ms)
  redis.call('PEXPIRE', expiry, ms)
  redis.call('PEXPIRE', users, ms)
end
`

/**
 * KEYS: order, members, expiry, users. ARGV: after (score, exclusive), limit. Drops expired members
 * first. Returns {total, scores and member JSON interleaved, more (1/0), distinct users}.
 */
export const PRESENCE_PAGE = PRESENCE_PRELUDE + `
removeExpired()
local total = redis.call('ZCARD', order)
local limit = tonumber(ARGV[2])
local page = redis.call('ZRANGEBYSCORE', order, '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, limit + 1)
local out = {}
local count = math.min(limit, #page / 2)
for i = 1, count do
  out[#out + 1] = page[2 * i]
  out[#out + 1] = redis.call('HGET', members, page[2 * i - 1])
end
return {total, out, #page / 2 > limit and 1 or 0, redis.call('HLEN', users)}
`

/**
 * A node's heartbeat for one slice of a room's members. KEYS: order, members, expiry, users. ARGV: ttl
 * ms; the room's presence channel on the room's last slice, '' on the others; then client ids. Extends the
 * expiry of those still there and returns {dropped, the ids Redis lost (a restart, an outage longer than
 * the ttl)}. The last slice also drops members nobody refreshes any more (a dead node's) and announces
 * them as left, in one message: after every slice of this node's members was extended.
 */
export const PRESENCE_REFRESH = PRESENCE_PRELUDE + `
local ttl = tonumber(ARGV[1])
local count = #ARGV - 2
local changed = 0
for first = 3, #ARGV, 500 do
  local args = {}
  for i = first, math.min(first + 499, #ARGV) do
    args[#args + 1] = now + ttl
    args[#args + 1] = ARGV[i]
  end
  changed = changed + redis.call('ZADD', expiry, 'XX', 'CH', unpack(args))
end
local lost = {}
-- Fewer changed than sent: some are gone, or were added in this very millisecond.
if changed < count then
  for i = 3, #ARGV do
    if not redis.call('ZSCORE', order, ARGV[i]) then lost[#lost + 1] = ARGV[i] end
  end
end
if changed > 0 then keepFor(ttl) end
if ARGV[2] == '' then return {0, lost} end
local gone = removeExpired()
if #gone > 0 then
  local events = {}
  for i, client in ipairs(gone) do events[i] = {kind = 'left', client = client} end
  -- One message for all of them: a dead node's members, thousands at a time, are one delivery per node.
  redis.call('PUBLISH', ARGV[2], 'p' .. cjson.encode(events))
end
return {#gone, lost}
`

/**
 * Joins and leaves, in order: the changes of a turn, or the members a refresh found that Redis lost.
 * KEYS: order, members, expiry, users. ARGV: ttl ms, then pairs of client and member JSON, or '' for a
 * leave. A member already there keeps its place and JSON and has its expiry extended.
 */
export const PRESENCE_CHANGE = PRESENCE_PRELUDE + `
local ttl = tonumber(ARGV[1])
local joined = false
local score
for i = 2, #ARGV, 2 do
  local client, member = ARGV[i], ARGV[i + 1]
  if member == '' then
    forgetUser(redis.call('HGET', members, client))
    redis.call('ZREM', order, client)
    redis.call('HDEL', members, client)
    redis.call('ZREM', expiry, client)
  else
    if not redis.call('ZSCORE', order, client) then
      score = score and score + 1 or nextOrder()
      redis.call('ZADD', order, score, client)
      redis.call('HSET', members, client, member)
      local user = cjson.decode(member).u
      if type(user) == 'string' then redis.call('HINCRBY', users, user, 1) end
    end
    redis.call('ZADD', expiry, now + ttl, client)
    joined = true
  end
end
if joined then keepFor(ttl) end
`
