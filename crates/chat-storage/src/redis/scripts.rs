//! The Lua scripts behind every Redis operation. Each runs atomically inside Redis, so a reader
//! never sees a message without its list entry or inbox update, and costs one round trip
//! (`EVALSHA`, loaded once per server).

use deadpool_redis::redis::Script;

/// Lua shared by the scripts that touch channel histories (see `Keyspace::event_position` and
/// `Keyspace::event_history`): `epoch_of` reads a channel's epoch, starting a new one (and
/// dropping any stale history) when the channel has none — it never had an event, or Redis lost
/// its data; `record` appends a durable event to a channel's history, trimmed to the window, and
/// publishes it as `<epoch>-<seq> <payload>`.
macro_rules! history_lua {
    () => {
        r"
local function epoch_of(position, history)
  local epoch = redis.call('HGET', position, 'e')
  if not epoch then
    local now = redis.call('TIME')
    epoch = now[1] .. string.format('%06d', tonumber(now[2]))
    redis.call('HSET', position, 'e', epoch)
    redis.call('DEL', history)
  end
  return epoch
end
local function record(position, history, channel, payload, now, size, ttl)
  local seq = redis.call('HINCRBY', position, 's', 1)
  local epoch = epoch_of(position, history)
  redis.call('XADD', history, 'MAXLEN', '~', size, seq .. '-' .. now, 'd', payload)
  redis.call('PEXPIRE', history, ttl)
  redis.call('PUBLISH', channel, epoch .. '-' .. seq .. ' ' .. payload)
end
"
    };
}

/// Append a message and announce it.
/// KEYS: chat list, chat data hash, author's activity hash, the latest-message hash, one inbox per
/// entry to refresh, then per channel of the chat's audience its position hash and its history.
/// ARGV: message id, message JSON, epoch ms (inbox score and history entry time), `last_active`
/// text, event payload, the chat's field in the latest-message hash, the number n of inbox keys,
/// the n inbox members (in the order of their keys), the history window's size and ttl (ms), the
/// idempotency ttl (ms; empty for a send without a key, whose key is then the last of KEYS), then
/// the channels to publish the event on. Recording and publishing inside the script orders each
/// channel's events like its writes.
/// Returns 1, or — when the idempotency key holds an earlier send — that send's event payload,
/// having written nothing.
const APPEND: &str = concat!(
    history_lua!(),
    r"
local inboxes = tonumber(ARGV[7])
local idempotency = ARGV[10 + inboxes]
if idempotency ~= '' then
  local first = redis.call('GET', KEYS[#KEYS])
  if first then
    return first
  end
end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], 'last_active', ARGV[4])
redis.call('HSET', KEYS[4], ARGV[6], ARGV[2])
for i = 1, inboxes do
  redis.call('ZADD', KEYS[4 + i], ARGV[3], ARGV[7 + i])
end
local size, ttl = ARGV[8 + inboxes], ARGV[9 + inboxes]
for i = 11 + inboxes, #ARGV do
  local k = 4 + inboxes + 2 * (i - 11 - inboxes)
  record(KEYS[k + 1], KEYS[k + 2], ARGV[i], ARGV[5], ARGV[3], size, ttl)
end
if idempotency ~= '' then
  redis.call('SET', KEYS[#KEYS], ARGV[5], 'PX', idempotency)
end
return 1
"
);

/// A page of history: the chat's size, the messages of one range of its list, and a channel's
/// position. KEYS: chat list, chat data hash, the channel's position hash and history. ARGV:
/// first and last index (negative, from the newest end).
/// Returns `{total, {json or false, …}, epoch, seq}` (false where an id has no data).
const HISTORY: &str = concat!(
    history_lua!(),
    r"
local epoch = epoch_of(KEYS[3], KEYS[4])
local seq = tonumber(redis.call('HGET', KEYS[3], 's') or '0')
local total = redis.call('LLEN', KEYS[1])
local ids = redis.call('LRANGE', KEYS[1], ARGV[1], ARGV[2])
if #ids == 0 then
  return {total, {}, epoch, seq}
end
return {total, redis.call('HMGET', KEYS[2], unpack(ids)), epoch, seq}
"
);

/// A channel's position, and the durable events after a given one.
/// KEYS: the channel's position hash and history. ARGV: the epoch of the position to resume from
/// (empty: none), its sequence number, the most events to return, the window's size, the oldest
/// entry time (epoch ms) the window still holds.
/// Returns `{epoch, seq, recovered, {{id, {field, payload}}, …}}`, recovered 1 when every event
/// after the given position is still in the window (then the list starts right after it), 0 when
/// not, -1 when no position was given.
const REPLAY: &str = concat!(
    history_lua!(),
    r"
local epoch = epoch_of(KEYS[1], KEYS[2])
local seq = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
if ARGV[1] == '' then
  return {epoch, seq, -1, {}}
end
local since = tonumber(ARGV[2])
if ARGV[1] ~= epoch or since > seq or seq - since > tonumber(ARGV[4]) then
  return {epoch, seq, 0, {}}
end
if since == seq then
  return {epoch, seq, 1, {}}
end
local entries = redis.call('XRANGE', KEYS[2], since + 1, '+', 'COUNT', ARGV[3])
local first = entries[1] and entries[1][1]
local dash = first and string.find(first, '-', 1, true)
if not dash or tonumber(string.sub(first, 1, dash - 1)) ~= since + 1
    or tonumber(string.sub(first, dash + 1)) < tonumber(ARGV[5]) then
  return {epoch, seq, 0, {}}
end
return {epoch, seq, 1, entries}
"
);

/// The latest messages of chats missing from the latest-message hash (chats the original service
/// wrote), recorded there as they are read.
/// KEYS: the latest-message hash, then per chat its list and its data hash. ARGV: per chat, its
/// field in the latest-message hash. Returns per chat the latest message JSON, or false.
const LATEST_BACKFILL: &str = r"
local found = {}
for i = 1, #ARGV do
  local list, data = KEYS[2 * i], KEYS[2 * i + 1]
  local message = false
  local last = redis.call('LINDEX', list, -1)
  if last then
    message = redis.call('HGET', data, last) or false
  end
  if message then
    redis.call('HSET', KEYS[1], ARGV[i], message)
  end
  found[i] = message
end
return found
";

/// Replace or delete a message if it is still exactly the version the caller decided on, keep the
/// chat's latest message right, and announce the change.
/// KEYS: chat data hash, chat list, the latest-message hash, then per channel of the chat's
/// audience its position hash and its history. ARGV: message id, expected JSON, `set` or `del`,
/// new JSON, event payload, the chat's field in the latest-message hash, now (epoch ms), the
/// history window's size and ttl (ms), then the channels to publish the event on.
/// Returns 1 when applied, 0 when the message changed (or vanished) in between.
const COMPARE_AND_SET: &str = concat!(
    history_lua!(),
    r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
if ARGV[3] == 'del' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('LREM', KEYS[2], 0, ARGV[1])
  local last = redis.call('LINDEX', KEYS[2], -1)
  local message = last and redis.call('HGET', KEYS[1], last)
  if message then
    redis.call('HSET', KEYS[3], ARGV[6], message)
  else
    redis.call('HDEL', KEYS[3], ARGV[6])
  end
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
  if redis.call('LINDEX', KEYS[2], -1) == ARGV[1] then
    redis.call('HSET', KEYS[3], ARGV[6], ARGV[4])
  end
end
for i = 10, #ARGV do
  local k = 3 + 2 * (i - 10)
  record(KEYS[k + 1], KEYS[k + 2], ARGV[i], ARGV[5], ARGV[7], ARGV[8], ARGV[9])
end
return 1
"
);

/// Renew this instance's vouching for some users, noting who just became active.
/// KEYS: per user, their presence key then their activity key; last, the presence index.
/// ARGV: instance id, deadline (epoch ms), now (epoch ms).
/// Returns the 1-based positions (among the users) of those who were live nowhere before.
const PRESENCE_REFRESH: &str = r"
local index = KEYS[#KEYS]
local arrived = {}
for i = 1, (#KEYS - 1) / 2 do
  local presence, activity = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('ZREMRANGEBYSCORE', presence, '-inf', ARGV[3])
  if redis.call('ZCARD', presence) == 0 then
    redis.call('HSET', activity, 'status', 'active')
    arrived[#arrived + 1] = i
  end
  redis.call('ZADD', presence, ARGV[2], ARGV[1])
  redis.call('ZADD', index, 'GT', ARGV[2], presence)
end
return arrived
";

/// This instance no longer vouches for a user. KEYS: presence key, activity key, presence index.
/// ARGV: instance id, now. Returns 1 when the user is now live nowhere (and marked inactive).
const PRESENCE_LEAVE: &str = r"
local was_live = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[2], '+inf') > 0
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[3], KEYS[1])
  redis.call('HSET', KEYS[2], 'status', 'inactive')
  if was_live then
    return 1
  end
end
return 0
";

/// Users every instance stopped vouching for. KEYS: the presence index. ARGV: now.
/// Each presence key found expired is dropped from the index (so only one sweeping instance
/// returns it) and its user's activity status set to inactive; its activity key sits beside it
/// (`…:presence:<uid>` → `…:activity:<uid>`, the rule of `Keyspace`). Returns the presence keys.
const PRESENCE_EXPIRE: &str = r"
local gone = {}
for _, presence in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1000)) do
  redis.call('ZREMRANGEBYSCORE', presence, '-inf', ARGV[1])
  redis.call('ZREM', KEYS[1], presence)
  if redis.call('ZCARD', presence) == 0 then
    local activity = string.gsub(presence, ':presence:(%d+)$', ':activity:%1')
    redis.call('HSET', activity, 'status', 'inactive')
    gone[#gone + 1] = presence
  end
end
return gone
";

/// The scripts, hashed once.
#[derive(Debug)]
pub(super) struct Scripts {
    pub(super) append: Script,
    pub(super) history: Script,
    pub(super) replay: Script,
    pub(super) latest_backfill: Script,
    pub(super) compare_and_set: Script,
    pub(super) presence_refresh: Script,
    pub(super) presence_leave: Script,
    pub(super) presence_expire: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            append: Script::new(APPEND),
            history: Script::new(HISTORY),
            replay: Script::new(REPLAY),
            latest_backfill: Script::new(LATEST_BACKFILL),
            compare_and_set: Script::new(COMPARE_AND_SET),
            presence_refresh: Script::new(PRESENCE_REFRESH),
            presence_leave: Script::new(PRESENCE_LEAVE),
            presence_expire: Script::new(PRESENCE_EXPIRE),
        }
    }
}
