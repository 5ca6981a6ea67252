"""The Lua scripts of `RedisContextStore`: each step of a turn is one of
them, so it is atomic and costs one round trip."""

# KEYS: identity. ARGV: new customer id, retention seconds, provisional ttl.
# A mapping made provisionally (a web chat hello) lives that long; the
# identity's first message resolves it again without one and keeps it like
# the customer's data: for the retention time, or for good when that is 0.
RESOLVE = """
local c = redis.call('GET', KEYS[1])
local keep = tonumber(ARGV[2])
local provisional = tonumber(ARGV[3])
if not c then
  redis.call('SET', KEYS[1], ARGV[1])
  c = ARGV[1]
  if provisional > 0 then keep = provisional end
end
if keep > 0 then redis.call('EXPIRE', KEYS[1], keep)
elseif provisional == 0 then redis.call('PERSIST', KEYS[1]) end
return c
"""

# KEYS: lock, seen, state, moved, identities.
# ARGV: token, ttl ms, check seen (1/0), identity member ('' for none).
# {3, marker} when merged away (the marker names the target; '' if erased),
# {3} when the identity is no longer the customer's, {2} a duplicate, {0}
# held by another, {1, state?} locked.
LOCK_AND_LOAD = """
local moved = redis.call('GET', KEYS[4])
if moved then return {3, moved} end
if ARGV[4] ~= '' and redis.call('SCARD', KEYS[5]) > 0
   and redis.call('SISMEMBER', KEYS[5], ARGV[4]) == 0 then return {3} end
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then return {2} end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
local s = redis.call('GET', KEYS[3])
if s then return {1, s} end
return {1}
"""

# KEYS: lock, seen, state, history, identities, addresses, outbox,
#       outbox-seq, outbox-claim.
# ARGV: token, state ('' keeps it), mark seen (1/0), dedup ttl, history max,
#       retention seconds, identity member ('' for none), address channel
#       ('' for none), address JSON, number of entries n, outbox claim ms,
#       n entries, then the outbox items.
# Returns {0} if the lock is lost (nothing written), else {1, first outbox
# seq (0: none), outbox claimed (1/0), earlier undelivered outbox items}.
SAVE_AND_UNLOCK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
if ARGV[2] ~= '' then redis.call('SET', KEYS[3], ARGV[2]) end
local n = tonumber(ARGV[10])
if n > 0 then
  redis.call('RPUSH', KEYS[4], unpack(ARGV, 12, 11 + n))
  redis.call('LTRIM', KEYS[4], -tonumber(ARGV[5]), -1)
end
if ARGV[7] ~= '' then redis.call('SADD', KEYS[5], ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[6], ARGV[8], ARGV[9]) end
if ARGV[3] == '1' then redis.call('SET', KEYS[2], '1', 'EX', ARGV[4]) end
local keep = tonumber(ARGV[6])
local function kept(i)
  if keep > 0 then redis.call('EXPIRE', KEYS[i], keep)
  else redis.call('PERSIST', KEYS[i]) end
end
for i = 3, 6 do kept(i) end
local earlier = redis.call('HLEN', KEYS[7])
local first, claimed = 0, 0
local m = #ARGV - 11 - n
if m > 0 then
  first = redis.call('INCRBY', KEYS[8], m) - m + 1
  local t = redis.call('TIME')
  local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[11])
  for i = 1, m do
    redis.call('HSET', KEYS[7], first + i - 1, string.format('%d', due) .. ' ' .. ARGV[11 + n + i])
  end
  if redis.call('SET', KEYS[9], ARGV[1], 'NX', 'PX', ARGV[11]) then claimed = 1 end
  kept(7)
  kept(8)
end
redis.call('DEL', KEYS[1])
return {1, first, claimed, earlier}
"""

EXTEND_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
