package redis

import goredis "github.com/redis/go-redis/v9"

// Every change of state that touches more than one key, or that must check
// ownership first, is one Lua script, so that it is atomic and costs one round
// trip. Scripts only touch the keys they are given (KEYS), which keeps them
// valid on a single node and on a cluster when the keys share a hash tag.

// owned checks that entry ARGV id is still leased to consumer with the same
// delivery count (a reclaim by anyone, even the same consumer, bumps the count).
const ownedLua = `
local function owned(stream, group, id, consumer, count)
  local ok, p = pcall(redis.call, 'XPENDING', stream, group, id, id, 1)
  if not ok or #p == 0 then return false end
  return p[1][2] == consumer and p[1][4] == tonumber(count)
end
`

// enqueueScript adds jobs unless the depth (stream length + delayed jobs) has
// reached ARGV[1] (0: no bound). ARGV[3..] are triples per job: its m and b
// fields, then the value of its pending result record (empty: no record). The
// records' keys are KEYS[3..], one per job that has a record, in order; each
// gets a TTL of ARGV[2] ms, as Results.Create does. A job and its record are
// stored together or, when refused, not at all; the record is written first,
// so a failing XADD can leave a record of a job never accepted (harmless:
// its id was never given out), never a job whose record is missing. It
// answers, per job, the entry id or 0 when refused.
var enqueueScript = goredis.NewScript(`
local max = tonumber(ARGV[1])
local depth = 0
if max > 0 then depth = redis.call('XLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2]) end
local out = {}
local k = 2
for i = 1, (#ARGV - 2) / 3 do
  local a = 3 * i
  local rec = ARGV[a+2] ~= ''
  if rec then k = k + 1 end
  if max > 0 and depth >= max then
    out[i] = 0
  else
    if rec then
      redis.call('SET', KEYS[k], ARGV[a+2], 'PX', ARGV[2])
    end
    out[i] = redis.call('XADD', KEYS[1], '*', 'm', ARGV[a], 'b', ARGV[a+1])
    depth = depth + 1
  end
end
return out
`)

// prepareScript runs before each read: it moves due delayed jobs (score ≤
// ARGV[1], at most ARGV[2]) back into the stream and, when ARGV[3] is '1',
// reclaims for consumer ARGV[4] up to ARGV[7] entries idle longer than ARGV[5]
// ms from cursor ARGV[6] (XAUTOCLAIM), with their delivery counts.
// Answer: {next due ms or -1, next cursor, {id, fields, count}...}.
var prepareScript = goredis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do
  local f = redis.call('HMGET', KEYS[3], id .. ':m', id .. ':b', id .. ':a')
  if f[1] then
    redis.call('XADD', KEYS[1], '*', 'm', f[1], 'b', f[2] or '', 'a', f[3] or '0')
  end
  redis.call('HDEL', KEYS[3], id .. ':m', id .. ':b', id .. ':a', id .. ':t')
  redis.call('ZREM', KEYS[2], id)
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local out = {-1, '0-0'}
if #nxt > 0 then out[1] = nxt[2] end
if ARGV[3] == '1' then
  local c = redis.call('XAUTOCLAIM', KEYS[1], ARGV[8], ARGV[4], ARGV[5], ARGV[6], 'COUNT', tonumber(ARGV[7]))
  out[2] = c[1]
  for _, e in ipairs(c[2]) do
    local p = redis.call('XPENDING', KEYS[1], ARGV[8], e[1], e[1], 1)
    local n = 1
    if #p > 0 then n = p[1][4] end
    table.insert(out, {e[1], e[2], n})
  end
end
return out
`)

// nackScript puts the job of entry ARGV[2] back: at once as a new stream entry
// when ARGV[7] is '0', else in the delayed set scored ARGV[7] (due, unix ms)
// with its fields in the delayed-jobs hash under job id ARGV[5]; then it acks
// and deletes the entry. ARGV[6] is the number of deliveries so far.
var nackScript = goredis.NewScript(ownedLua + `
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 0 end
local e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #e == 1 then
  local f, m, b = e[1][2], nil, ''
  for i = 1, #f, 2 do
    if f[i] == 'm' then m = f[i+1] elseif f[i] == 'b' then b = f[i+1] end
  end
  if m then
    if ARGV[7] == '0' then
      redis.call('XADD', KEYS[1], '*', 'm', m, 'b', b, 'a', ARGV[6])
    else
      local id = ARGV[5]
      redis.call('HSET', KEYS[3], id .. ':m', m, id .. ':b', b, id .. ':a', ARGV[6],
        id .. ':t', string.match(ARGV[2], '^(%d+)'))
      redis.call('ZADD', KEYS[2], ARGV[7], id)
    end
  end
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
`)

// extendScript resets the idle time of entry ARGV[2] (XCLAIM to itself with
// JUSTID, which does not count a delivery) if consumer ARGV[3] still holds it.
var extendScript = goredis.NewScript(ownedLua + `
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
return 1
`)

// deadLetterScript copies entry ARGV[2] with the reason to the dead-letter
// stream KEYS[2] (trimmed to exactly ARGV[5] entries) and acks and deletes it.
var deadLetterScript = goredis.NewScript(ownedLua + `
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 0 end
local e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #e == 1 then
  local f, m, b = e[1][2], '', ''
  for i = 1, #f, 2 do
    if f[i] == 'm' then m = f[i+1] elseif f[i] == 'b' then b = f[i+1] end
  end
  redis.call('XADD', KEYS[2], 'MAXLEN', tonumber(ARGV[5]), '*', 'm', m, 'b', b,
    'reason', ARGV[6], 'attempts', ARGV[7], 'at', ARGV[8], 'status', ARGV[9], 'last_body', ARGV[10])
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
`)

// statsScript answers {stream length, delayed, pending, dead letters, first
// entry id or ”, stream time (unix ms) of the delayed job due first or ”}.
var statsScript = goredis.NewScript(`
local pending = 0
local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1])
if ok then pending = p[1] end
local first = ''
local e = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #e > 0 then first = e[1][1] end
local dt = ''
local d = redis.call('ZRANGE', KEYS[2], 0, 0)
if #d > 0 then dt = redis.call('HGET', KEYS[4], d[1] .. ':t') or '' end
return {redis.call('XLEN', KEYS[1]), redis.call('ZCARD', KEYS[2]), pending, redis.call('XLEN', KEYS[3]), first, dt}
`)
