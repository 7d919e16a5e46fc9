package redisdriver

// The Lua scripts. Epochs travel as decimal strings and are compared as
// strings (Lua numbers cannot hold 64 bits). PTTL answers -2 for a missing
// key and -1 for one without expiry.

// lookupScript reads a URL's epoch, options and plain object in one round
// trip. KEYS: epoch, options, object. ARGV[1]: the header of the object
// the reader holds, or "": when the stored object has that header the
// reply is "=" rather than the object. It writes nothing, so it runs on a
// server out of memory and on replicas.
var lookupScript = newScript(`#!lua flags=no-writes
local e = redis.call('GET', KEYS[1])
local o = redis.call('GET', KEYS[2])
local b
if ARGV[1] ~= '' and redis.call('GETRANGE', KEYS[3], 0, 28) == ARGV[1] then
  b = '='
else
  b = redis.call('GET', KEYS[3])
end
return {e, o, b}
`)

// objectScript reads one object. KEYS: object. ARGV[1]: as lookupScript's.
var objectScript = newScript(`#!lua flags=no-writes
if ARGV[1] ~= '' and redis.call('GETRANGE', KEYS[1], 0, 28) == ARGV[1] then
  return '='
end
return redis.call('GET', KEYS[1])
`)

// storeScript is the compare-and-set of a Store. KEYS: epoch, options,
// object, then one key per tag. ARGV:
//
//	1 the epoch the caller read ("0": none)
//	2 the epoch after the store
//	3 the options' encoding, or "" to keep the stored ones
//	4 's' to set the object, 'd' to delete it, 'n' to leave it
//	5 the object's value
//	6 the object's time to live, ms
//	7 the least time to live of the epoch and options, ms
//	8 the IfDate condition's 12 bytes, or ""
//	9 the tag member: the epoch key's name, then the URL key
//
// The epoch and options keys live at least as long as any object stored
// with them: their time to live only grows. It returns 1 when it stored, 0
// when a condition failed (then it wrote nothing).
var storeScript = newScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then cur = '0' end
if cur ~= ARGV[1] then return 0 end
if ARGV[8] ~= '' and redis.call('GETRANGE', KEYS[3], 9, 20) ~= ARGV[8] then return 0 end
local px = tonumber(ARGV[7])
if ARGV[4] == 's' and tonumber(ARGV[6]) > px then px = tonumber(ARGV[6]) end
local t = redis.call('PTTL', KEYS[1])
if t > px then px = t end
local to = redis.call('PTTL', KEYS[2])
if to > px then px = to end
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', px)
elseif to > 0 and to < px then
  redis.call('PEXPIRE', KEYS[2], px)
end
if ARGV[2] ~= '0' then redis.call('SET', KEYS[1], ARGV[2], 'PX', px) end
if ARGV[4] == 's' then
  redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[6])
elseif ARGV[4] == 'd' then
  redis.call('DEL', KEYS[3])
end
for i = 4, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[9])
  if redis.call('PTTL', KEYS[i]) < px then redis.call('PEXPIRE', KEYS[i], px) end
end
return 1
`)

// purgeScript sets a URL's epoch, keeping its options, drops its plain
// object and announces the purge. KEYS: epoch, plain object. ARGV: the
// new epoch, the least time to live of a purge mark (ms), the channel,
// the message.
var purgeScript = newScript(`
local px = tonumber(ARGV[2])
local t = redis.call('PTTL', KEYS[1])
if t > px then px = t end
redis.call('SET', KEYS[1], ARGV[1], 'PX', px)
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`)

// purgeTagScript purges every URL stored with a tag and forgets the tag.
// KEYS: the tag. ARGV: the new epoch, the least time to live of a purge
// mark (ms), the channel, the sender's id, the length of an epoch key's
// name, the tag. It announces one message per URL and one for the tag,
// and returns the URL keys it purged. The epoch keys it writes are not
// declared: tags span slots, so PurgeTag needs a server that is not a
// Cluster.
var purgeTagScript = newScript(`
local members = redis.call('SMEMBERS', KEYS[1])
local n = tonumber(ARGV[5])
local urls = {}
for _, m in ipairs(members) do
  local ek = string.sub(m, 1, n)
  local url = string.sub(m, n + 1)
  local px = tonumber(ARGV[2])
  local t = redis.call('PTTL', ek)
  if t > px then px = t end
  redis.call('SET', ek, ARGV[1], 'PX', px)
  redis.call('PUBLISH', ARGV[3], 'v' .. ARGV[4] .. ' ' .. ARGV[1] .. ' ' .. url)
  urls[#urls + 1] = url
end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[3], 't' .. ARGV[4] .. ' ' .. ARGV[1] .. ' ' .. ARGV[6])
return urls
`)

// leaseScript takes a fetch lease, unless an object was stored since the
// caller read the key. KEYS: the lease, the object. ARGV: the caller's
// token, the lease's time to live (ms), and the header of the object as
// the caller read it ("": none), or "?" to take the lease whatever the
// object. It returns 1 when it took the lease, 0 when another process
// holds it, 2 when another object is stored than the one read (someone
// fetched it meanwhile). An object gone since (expired, purged) does not
// refuse the lease: nobody fetched it.
var leaseScript = newScript(`
if ARGV[3] ~= '?' then
  local h = redis.call('GETRANGE', KEYS[2], 0, 28)
  if h ~= '' and h ~= ARGV[3] then
    return 2
  end
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
`)

// releaseScript releases a fetch lease if the caller still holds it, and
// wakes the processes waiting for it. KEYS: the lease. ARGV: the token,
// the channel, the message.
var releaseScript = newScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
`)

// tagScript adds a URL to a tag on a Redis Cluster, where the tag's key
// is in another slot than the URL's records, so storeScript cannot. KEYS:
// the tag. ARGV: the member, the least time to live (ms).
var tagScript = newScript(`
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`)
