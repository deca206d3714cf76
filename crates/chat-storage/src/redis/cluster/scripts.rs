//! The Lua scripts of the cluster layout. A script touches one hash slot only: a chat's step (its
//! message, order, counts and topic channel, plus a fan-out record of what other slots still owe)
//! and a user's step (their inbox, unread counts, activity and channel), which applies one
//! fan-out record once, in the chat's order. Events go out with `SPUBLISH`, in the slot of their
//! channel.

use redis::Script;

/// `fanout`: gives a chat's write its fan-out number and keeps its record (a JSON list of
/// per-user entries, see `USER_APPLY`) until every user step has run; lists the chat as pending
/// in its slot's bucket. Returns the number.
macro_rules! lua_fanout {
    () => {
        r"
local function fanout(index, pending, bucket, member, entries, now)
  local f = redis.call('HINCRBY', index, 'f', '1')
  redis.call('HSET', pending, f, cjson.encode(entries))
  redis.call('ZADD', bucket, 'NX', now, member)
  return f
end
"
    };
}

/// `read_payload`: a `read` event's payload from its head, the message and (when it counts) the
/// reader's unread count.
macro_rules! lua_read_payload {
    () => {
        r#"
local function read_payload(head, id, counts, unread)
  local tail = '}'
  if counts == '1' then
    tail = ',"unread":' .. unread .. '}'
  end
  return head .. ',"message":"' .. id .. '"' .. tail
end
"#
    };
}

/// A send's chat step.
/// KEYS: chat list, data hash, index, order, the author's messages there, the chat's latest, its
/// fan-out records, its slot's pending bucket, its read hash, then for a topic its channel's
/// position and history, for a DM the recipient's messages there, then (with an idempotency key)
/// the result key.
/// ARGV: message id, JSON, epoch ms, `last_active` text, event payload, history size and ttl (ms),
/// idempotency ttl (ms; empty: none), the topic's channel (empty for a DM), the bucket member,
/// the author's id, the number of inbox entries, then per entry its owner, member and whether the
/// message counts as unread for the owner (`1`, a DM's recipient: whose count is then taken).
/// Returns `{0, first payload}` when the key holds an earlier send (nothing written), else
/// `{1, f, {f, record, …}}`: the fan-out number and every pending record of the chat.
const CHAT_SEND: &str = concat!(
    lua_record!("SPUBLISH"),
    lua_pending!(),
    lua_unread_after!(),
    lua_fanout!(),
    r"
local idempotency = ARGV[8]
if idempotency ~= '' then
  local first = redis.call('GET', KEYS[#KEYS])
  if first then
    return {0, first}
  end
end
local n = redis.call('HINCRBY', KEYS[3], 'n', '1')
if n == 1 then
  pending(KEYS[3], KEYS[1], true)
end
local ordinal = string.format('%d', n)
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('SET', KEYS[6], ARGV[2])
redis.call('ZADD', KEYS[4], ordinal, ARGV[1])
redis.call('ZADD', KEYS[5], ordinal, ordinal)
local topic = ARGV[9] ~= ''
if topic then
  record(KEYS[10], KEYS[11], ARGV[9], ARGV[5], ARGV[3], ARGV[6], ARGV[7])
end
local entries = {}
for i = 0, tonumber(ARGV[12]) - 1 do
  local owner, member, counts = ARGV[13 + 3 * i], ARGV[14 + 3 * i], ARGV[15 + 3 * i]
  local entry = {u = owner, m = member, s = ARGV[3]}
  if owner == ARGV[11] then
    entry.a = ARGV[4]
  end
  if counts == '1' then
    local r = redis.call('HGET', KEYS[9], owner)
    entry.c = unread_after(KEYS[4], KEYS[10], r and tonumber(r))
  end
  if not topic then
    entry.e = {ARGV[5]}
  end
  entries[#entries + 1] = entry
end
local f = fanout(KEYS[3], KEYS[7], KEYS[8], ARGV[10], entries, ARGV[3])
if idempotency ~= '' then
  redis.call('SET', KEYS[#KEYS], ARGV[5], 'PX', idempotency)
end
return {1, f, redis.call('HGETALL', KEYS[7])}
"
);

/// A user's step: applies one fan-out entry of chat `ARGV[1]` once, and only after the entries
/// numbered before it (the caller applies a chat's pending records in order).
/// KEYS: the user's unread hash, inbox, activity hash, channel position and history.
/// ARGV: the chat's suffix, the fan-out number, the entry JSON (`u` the user; optional `m`/`s`
/// inbox member and score, `a` last_active, `c` the user's unread count in the DM, `e` event
/// payloads for the user's channel), the history size and ttl (ms), the user's channel, now (ms).
/// Returns 1 when applied, 0 when it was already.
const USER_APPLY: &str = concat!(
    lua_record!("SPUBLISH"),
    r"
local applied = 'f:' .. ARGV[1]
if tonumber(ARGV[2]) <= tonumber(redis.call('HGET', KEYS[1], applied) or '0') then
  return 0
end
redis.call('HSET', KEYS[1], applied, ARGV[2])
local entry = cjson.decode(ARGV[3])
if entry.m then
  redis.call('ZADD', KEYS[2], 'GT', entry.s, entry.m)
end
if entry.c then
  local before = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
  redis.call('HSET', KEYS[1], ARGV[1], string.format('%d', entry.c))
  redis.call('HINCRBY', KEYS[1], 't', string.format('%d', entry.c - before))
end
if entry.a then
  redis.call('HSET', KEYS[3], 'last_active', entry.a)
end
if entry.e then
  for _, payload in ipairs(entry.e) do
    record(KEYS[4], KEYS[5], ARGV[6], payload, ARGV[7], ARGV[4], ARGV[5])
  end
end
return 1
"
);

/// Fan-out records applied: drops them, and the chat from its bucket once none is left.
/// KEYS: the chat's fan-out records, its slot's bucket. ARGV: the bucket member, then the numbers.
const FANOUT_DONE: &str = r"
redis.call('HDEL', KEYS[1], unpack(ARGV, 2))
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1
";

/// A chat's pending fan-out records. KEYS: the records. Returns `{f, record, …}`.
const FANOUT_PENDING: &str = r"
return redis.call('HGETALL', KEYS[1])
";

/// A page of a chat (the channel position is read before, by `REPLAY` without a position).
/// KEYS: chat list, data hash, index, order, read hash. ARGV: as the standalone `HISTORY`'s.
const CHAT_HISTORY: &str = concat!(
    lua_history_page!(),
    r"
return history_page(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
"
);

/// A read's chat step: moves the reader's position forward and records the fan-out of its events
/// (and, in a DM, of the reader's new count).
/// KEYS: the chat's order, the reader's messages there, read hash, index, fan-out records, the
/// slot's bucket. ARGV: message id (empty: the latest), reader, now (ms), `1` for a DM, the bucket
/// member, the number m of channels, then per channel (its user, payload head, counts).
/// Returns `{1, id, unread, f, {f, record, …}}` when it moved, `{0, id or false, unread}` when it
/// was there already, `{-2}` for an empty chat, `{-3}` for a message not in it.
const CHAT_READ: &str = concat!(
    lua_read_target!(),
    lua_unread_after!(),
    lua_read_up_to!(),
    lua_read_payload!(),
    lua_fanout!(),
    r"
local id, s = read_target(KEYS[1], ARGV[1])
if not id then
  return {s}
end
local r = redis.call('HGET', KEYS[3], ARGV[2])
r = r and tonumber(r)
if r and s <= r then
  return {0, read_up_to(KEYS[1], r), unread_after(KEYS[1], KEYS[2], r)}
end
redis.call('HSET', KEYS[3], ARGV[2], s)
local unread = unread_after(KEYS[1], KEYS[2], s)
local entries = {}
for j = 0, tonumber(ARGV[6]) - 1 do
  local user, head, counts = ARGV[7 + 3 * j], ARGV[8 + 3 * j], ARGV[9 + 3 * j]
  local entry = {u = user, e = {read_payload(head, id, counts, unread)}}
  if user == ARGV[2] and ARGV[4] == '1' then
    entry.c = unread
  end
  entries[#entries + 1] = entry
end
local f = fanout(KEYS[4], KEYS[5], KEYS[6], ARGV[5], entries, ARGV[3])
return {1, id, unread, f, redis.call('HGETALL', KEYS[5])}
"
);

/// Replace, mark seen or delete a message if it is still the version decided on (the cluster
/// `COMPARE_AND_SET`): the chat's side at once, the users' through a fan-out record.
/// KEYS: data hash, latest, index, order, the messages there of the author (`set`, `del`) or the
/// marker (`seen`), read hash, the messages there of the user whose count changes (the DM's
/// recipient for `del`, the marker for `seen`), fan-out records, the slot's bucket, then for a
/// topic its channel's position and history.
/// ARGV: message id, expected JSON, `set`, `seen` or `del`, new JSON, event payload, now (ms),
/// history size and ttl (ms), the user whose count changes, `1` for a DM, the bucket member, the
/// topic's channel (empty for a DM), the number p of participants (a DM's two, whose channels hear
/// the event), their ids, then the number m of `read` channels and per channel (user, payload
/// head, counts).
/// Returns `{1, f or 0, {f, record, …}}` when applied, `{0}` when the message changed in between.
const CHAT_MODIFY: &str = concat!(
    lua_record!("SPUBLISH"),
    lua_unread_after!(),
    lua_read_payload!(),
    lua_fanout!(),
    r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return {0}
end
local op, dm, topic = ARGV[3], ARGV[10] == '1', ARGV[12]
local latest = redis.call('GET', KEYS[2])
local count = nil
if op == 'del' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  local s = redis.call('ZSCORE', KEYS[4], ARGV[1])
  if s then
    redis.call('ZREM', KEYS[4], ARGV[1])
    redis.call('ZREM', KEYS[5], s)
    if dm then
      local r = redis.call('HGET', KEYS[6], ARGV[9])
      count = unread_after(KEYS[4], KEYS[7], r and tonumber(r))
    end
  end
  if not latest or latest == ARGV[2] then
    local last = redis.call('ZREVRANGE', KEYS[4], '0', '0')[1]
    local message = last and redis.call('HGET', KEYS[1], last)
    if message then
      redis.call('SET', KEYS[2], message)
    else
      redis.call('DEL', KEYS[2])
    end
  end
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
  if latest == ARGV[2] then
    redis.call('SET', KEYS[2], ARGV[4])
  end
end
if topic ~= '' then
  record(KEYS[10], KEYS[11], topic, ARGV[5], ARGV[6], ARGV[7], ARGV[8])
end
local entries, by_user = {}, {}
local function entry_of(user)
  if not by_user[user] then
    by_user[user] = {u = user, e = {}}
    entries[#entries + 1] = by_user[user]
  end
  return by_user[user]
end
local p = tonumber(ARGV[13])
if topic == '' then
  for j = 1, p do
    table.insert(entry_of(ARGV[13 + j]).e, ARGV[5])
  end
end
local at = 14 + p
if op == 'seen' then
  local s = redis.call('ZSCORE', KEYS[4], ARGV[1])
  local r = redis.call('HGET', KEYS[6], ARGV[9])
  r = r and tonumber(r)
  if s and not (r and tonumber(s) <= r) then
    redis.call('HSET', KEYS[6], ARGV[9], s)
    local unread = unread_after(KEYS[4], KEYS[5], tonumber(s))
    if dm then
      count = unread
    end
    for j = 0, tonumber(ARGV[at]) - 1 do
      local user, head, counts = ARGV[at + 1 + 3 * j], ARGV[at + 2 + 3 * j], ARGV[at + 3 + 3 * j]
      table.insert(entry_of(user).e, read_payload(head, ARGV[1], counts, unread))
    end
  end
end
if count then
  entry_of(ARGV[9]).c = count
end
if #entries == 0 then
  return {1, 0, {}}
end
for _, entry in ipairs(entries) do
  if #entry.e == 0 then
    entry.e = nil
  end
end
local f = fanout(KEYS[3], KEYS[8], KEYS[9], ARGV[11], entries, ARGV[6])
return {1, f, redis.call('HGETALL', KEYS[8])}
"
);

/// The user's side of an inbox page: the channel position, the inbox's size and total, and per
/// entry its member, score and (a DM's) unread count, its chat derived from the member as the
/// standalone `INBOX` does.
/// KEYS: the owner's channel position and history, inbox, unread hash. ARGV: first and last rank,
/// the owner's id.
/// Returns `{epoch, seq, total, unread total, member, score, count, …}` (a topic's count 0).
const USER_INBOX: &str = concat!(
    lua_epoch_of!(),
    r"
local epoch = epoch_of(KEYS[1], KEYS[2])
local seq = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
local total = redis.call('ZCARD', KEYS[3])
local page = redis.call('ZREVRANGE', KEYS[3], ARGV[1], ARGV[2], 'WITHSCORES')
local fields = {'t'}
for i = 1, #page, 2 do
  local member, field = page[i], '-'
  if string.byte(member, 1) == 117 then
    local lo, hi = ARGV[3], string.sub(member, 6)
    if #lo > #hi or (#lo == #hi and lo > hi) then
      lo, hi = hi, lo
    end
    field = 'dm:' .. lo .. '-' .. hi
  end
  fields[#fields + 1] = field
end
local counts = redis.call('HMGET', KEYS[4], unpack(fields))
local answer = {epoch, seq, total, tonumber(counts[1] or '0')}
for i = 1, #page, 2 do
  answer[#answer + 1] = page[i]
  answer[#answer + 1] = page[i + 1]
  answer[#answer + 1] = tonumber(counts[(i + 1) / 2 + 1] or '0')
end
return answer
"
);

/// The chat's side of an inbox entry: its latest message and, for a topic, the owner's unread
/// count there. KEYS: the chat's latest, list, data hash, order, the owner's messages there, read
/// hash. ARGV: the owner, `1` for a topic. Returns `{latest JSON or false, unread}`.
const CHAT_SUMMARY: &str = concat!(
    lua_unread_after!(),
    r"
local message = redis.call('GET', KEYS[1])
if not message then
  local last = redis.call('LINDEX', KEYS[2], -1)
  message = last and redis.call('HGET', KEYS[3], last)
end
local unread = 0
if ARGV[2] == '1' then
  local r = redis.call('HGET', KEYS[6], ARGV[1])
  unread = unread_after(KEYS[4], KEYS[5], r and tonumber(r))
end
return {message or false, unread}
"
);

/// `live_among`: whether the owner of `presence` has a connection on one of the live instances
/// (ARGV from `first` on); drops the instances that are not.
macro_rules! lua_live_among {
    () => {
        r"
local function live_among(presence, first)
  local live, listed = false, {}
  for i = first, #ARGV do
    listed[ARGV[i]] = true
  end
  for _, instance in ipairs(redis.call('ZRANGE', presence, 0, -1)) do
    if listed[instance] then
      live = true
    else
      redis.call('ZREM', presence, instance)
    end
  end
  return live
end
"
    };
}

/// A user now has a connection on an instance. KEYS: their presence, activity hash. ARGV: the
/// instance, now, then the live instances. Returns 1 when they were live nowhere before.
const USER_JOIN: &str = concat!(
    lua_live_among!(),
    r"
local arrived = not live_among(KEYS[1], 3)
if arrived then
  redis.call('HSET', KEYS[2], 'status', 'active')
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return arrived and 1 or 0
"
);

/// An instance no longer has a connection of a user (it left, or the instance lapsed). KEYS:
/// their presence, activity hash. ARGV: the instance, then the live instances. Returns 1 when the
/// user is now live nowhere after having been live there.
const USER_LEAVE: &str = concat!(
    lua_live_among!(),
    r"
local was_there = redis.call('ZREM', KEYS[1], ARGV[1]) == 1
if live_among(KEYS[1], 2) then
  return 0
end
redis.call('HSET', KEYS[2], 'status', 'inactive')
return was_there and 1 or 0
"
);

/// Takes one batch of the users of the first lapsed instance. KEYS: the instances. ARGV: now, the
/// batch size. Returns `{}` when none lapsed, else `{instance, {live instance, …}, presence key,
/// …}`; the instance goes once its users are all taken.
const INSTANCE_SWEEP: &str = r"
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)[1]
if not lapsed then
  return {}
end
local batch = redis.call('SPOP', KEYS[1] .. ':' .. lapsed, ARGV[2])
if #batch < tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], lapsed)
end
local answer = {lapsed, redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')}
for _, presence in ipairs(batch) do
  answer[#answer + 1] = presence
end
return answer
";

/// The scripts, hashed once.
#[derive(Debug)]
pub(super) struct ClusterScripts {
    pub(super) chat_send: Script,
    pub(super) user_apply: Script,
    pub(super) fanout_done: Script,
    pub(super) fanout_pending: Script,
    pub(super) chat_history: Script,
    pub(super) chat_read: Script,
    pub(super) chat_modify: Script,
    pub(super) user_inbox: Script,
    pub(super) chat_summary: Script,
    pub(super) user_join: Script,
    pub(super) user_leave: Script,
    pub(super) instance_sweep: Script,
}

impl ClusterScripts {
    pub(super) fn new() -> Self {
        Self {
            chat_send: Script::new(CHAT_SEND),
            user_apply: Script::new(USER_APPLY),
            fanout_done: Script::new(FANOUT_DONE),
            fanout_pending: Script::new(FANOUT_PENDING),
            chat_history: Script::new(CHAT_HISTORY),
            chat_read: Script::new(CHAT_READ),
            chat_modify: Script::new(CHAT_MODIFY),
            user_inbox: Script::new(USER_INBOX),
            chat_summary: Script::new(CHAT_SUMMARY),
            user_join: Script::new(USER_JOIN),
            user_leave: Script::new(USER_LEAVE),
            instance_sweep: Script::new(INSTANCE_SWEEP),
        }
    }
}
