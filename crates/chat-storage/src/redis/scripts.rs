//! The Lua scripts behind every Redis operation. Each runs atomically inside Redis, so a reader
//! never sees a message without its list entry or inbox update, and costs one round trip
//! (`EVALSHA`, loaded once per server).

use redis::Script;

// Lua functions the scripts share, one macro each, so that a script defines only what it calls
// (each definition is a closure made on every call, which costs Redis time). A function's macro
// includes those it calls.
//
// On the hot paths numbers reach Redis as strings: a Lua number handed to `redis.call` or joined
// into a string is printed with `%.17g`/`%.14g`, several times the cost of `string.format('%d')`.

/// `epoch_of`: reads a channel's epoch (see `Keyspace::event_position`), starting a new one
/// (and dropping any stale history) when the channel has none — it never had an event, or Redis
/// lost its data.
macro_rules! lua_epoch_of {
    () => {
        concat!(
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
"
        )
    };
}

/// `record`: appends a durable event to a channel's history (`Keyspace::event_history`),
/// trimmed to the window, and publishes it as `<epoch>-<seq> <payload>` — with `PUBLISH`, or the
/// command given (`SPUBLISH` on a cluster, where the channel is in the history's slot).
macro_rules! lua_record {
    () => {
        lua_record!("PUBLISH")
    };
    ($publish:literal) => {
        concat!(
            lua_epoch_of!(),
            r"
local function record(position, history, channel, payload, now, size, ttl)
  local seq = string.format('%d', redis.call('HINCRBY', position, 's', '1'))
  local epoch = epoch_of(position, history)
  redis.call('XADD', history, 'MAXLEN', '~', size, seq .. '-' .. now, 'd', payload)
  redis.call('PEXPIRE', history, ttl)
  redis.call('",
            $publish,
            r"', channel, epoch .. '-' .. seq .. ' ' .. payload)
end
"
        )
    };
}

/// `pending`: how many of a chat's list entries — the oldest, the original service's — still
/// wait to be indexed (see `Keyspace::chat_index`; all of them when the chat has no index yet).
/// A script that writes passes `start` to start the chat's index when it has none (`n`, the last
/// ordinal given, is left to the send that gives one).
macro_rules! lua_pending {
    () => {
        concat!(
            r"
local function pending(index, list, start)
  local p = redis.call('HGET', index, 'p')
  if p then
    return tonumber(p)
  end
  local len = redis.call('LLEN', list)
  if start then
    redis.call('HSET', index, 'p', len, 'o', 1)
  end
  return len
end
"
        )
    };
}

/// `unread_after`: the messages by others than the owner of `mine` (`Keyspace::chat_by`) after
/// ordinal `r` (all, when `r` is false): two `ZCOUNT`s of `Keyspace::chat_order`.
macro_rules! lua_unread_after {
    () => {
        concat!(
            r"
local function unread_after(order, mine, r)
  local from = r and ('(' .. r) or '-inf'
  return redis.call('ZCOUNT', order, from, '+inf') - redis.call('ZCOUNT', mine, from, '+inf')
end
"
        )
    };
}

/// `read_up_to`: the latest remaining message at or before ordinal `r` (false for none, or when
/// `r` is).
macro_rules! lua_read_up_to {
    () => {
        concat!(
            r"
local function read_up_to(order, r)
  if not r then
    return false
  end
  return redis.call('ZREVRANGEBYSCORE', order, r, '-inf', 'LIMIT', '0', '1')[1] or false
end
"
        )
    };
}

/// `move_read`: moves a reader's position (`Keyspace::chat_read`) forward to ordinal `s`,
/// keeping their DM count (`field` of their `Keyspace::unread` hash; empty for a topic) and
/// total right; returns their unread count and whether it moved.
macro_rules! lua_move_read {
    () => {
        concat!(
            lua_unread_after!(),
            r"
local function move_read(order, mine, reads, unread, reader, field, s)
  local r = redis.call('HGET', reads, reader)
  r = r and tonumber(r)
  if r and s <= r then
    return unread_after(order, mine, r), false
  end
  local before = unread_after(order, mine, r)
  redis.call('HSET', reads, reader, s)
  local after = unread_after(order, mine, s)
  if field ~= '' then
    redis.call('HINCRBY', unread, 't', after - before)
    redis.call('HSET', unread, field, after)
  end
  return after, true
end
"
        )
    };
}

/// `announce_read`: records and publishes the `read` events on `m` channels whose keys start at
/// `KEYS[k]` and whose (payload head, channel, counts) arguments start at `ARGV[a]`.
macro_rules! lua_announce_read {
    () => {
        concat!(
            lua_record!(),
            r#"
local function announce_read(k, a, m, id, unread, now, size, ttl)
  for j = 0, m - 1 do
    local head, channel, counts = ARGV[a + 3 * j], ARGV[a + 3 * j + 1], ARGV[a + 3 * j + 2]
    local tail = '}'
    if counts == '1' then
      tail = ',"unread":' .. unread .. '}'
    end
    local payload = head .. ',"message":"' .. id .. '"' .. tail
    record(KEYS[k + 2 * j], KEYS[k + 2 * j + 1], channel, payload, now, size, ttl)
  end
end
"#
        )
    };
}

/// Append a message and announce it.
/// KEYS: chat list, chat data hash, author's activity hash, the latest-message hash, the chat's
/// index, order and the author's messages there, then per inbox to refresh the inbox and its
/// owner's unread hash, then per channel of the chat's audience its position hash and its history.
/// ARGV: message id, message JSON, epoch ms (inbox score and history entry time), `last_active`
/// text, event payload, the chat's field in the latest-message hash, the number n of inboxes, per
/// inbox its member and `1` when the message counts as unread for its owner (else `0`), the
/// history window's size and ttl (ms), the idempotency ttl (ms; empty for a send without a key,
/// whose key is then the last of KEYS), then the channels to publish the event on. Recording and
/// publishing inside the script orders each channel's events like its writes.
/// Returns 1, or — when the idempotency key holds an earlier send — that send's event payload,
/// having written nothing.
const APPEND: &str = concat!(
    lua_record!(),
    lua_pending!(),
    r"
local inboxes = tonumber(ARGV[7])
local idempotency = ARGV[10 + 2 * inboxes]
if idempotency ~= '' then
  local first = redis.call('GET', KEYS[#KEYS])
  if first then
    return first
  end
end
-- The chat's first ordinal starts its index (before this entry joins the list); later sends read
-- how many entries wait to be indexed only when an inbox gains the chat.
local n = redis.call('HINCRBY', KEYS[5], 'n', '1')
local waiting = n == 1 and pending(KEYS[5], KEYS[1], true)
local ordinal = string.format('%d', n)
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], 'last_active', ARGV[4])
redis.call('HSET', KEYS[4], ARGV[6], ARGV[2])
redis.call('ZADD', KEYS[6], ordinal, ARGV[1])
redis.call('ZADD', KEYS[7], ordinal, ordinal)
for i = 1, inboxes do
  local inbox, unread = KEYS[6 + 2 * i], KEYS[7 + 2 * i]
  if redis.call('ZADD', inbox, ARGV[3], ARGV[6 + 2 * i]) == 1 then
    waiting = waiting or pending(KEYS[5], KEYS[1])
    if waiting > 0 then
      -- The inbox gained a chat that waits: no longer all indexed, and an indexing walk under
      -- way must not mark it so.
      redis.call('HDEL', unread, 'i')
      redis.call('HINCRBY', unread, 'w', '1')
    elseif redis.call('ZCARD', inbox) == 1 then
      -- A new inbox holding only this (indexed) chat.
      redis.call('HSET', unread, 'i', '1')
    end
  end
  if ARGV[7 + 2 * i] == '1' then
    redis.call('HINCRBY', unread, 't', '1')
    redis.call('HINCRBY', unread, ARGV[6], '1')
  end
end
local size, ttl = ARGV[8 + 2 * inboxes], ARGV[9 + 2 * inboxes]
for i = 11 + 2 * inboxes, #ARGV do
  local k = 7 + 2 * inboxes + 2 * (i - 11 - 2 * inboxes)
  record(KEYS[k + 1], KEYS[k + 2], ARGV[i], ARGV[5], ARGV[3], size, ttl)
end
if idempotency ~= '' then
  redis.call('SET', KEYS[#KEYS], ARGV[5], 'PX', idempotency)
end
return 1
"
);

/// `history_page`: one page of a chat, as `HISTORY` describes it (without the channel position):
/// `{1, total, {json or false, …}, more, {message id or false, …}}`, `{-1}` when the chat must be
/// indexed first, `{-3}` for an unknown cursor. ARGV as `HISTORY`'s.
macro_rules! lua_history_page {
    () => {
        concat!(
            lua_pending!(),
            lua_read_up_to!(),
            r"
local function history_page(list, data, index, order, read)
  -- A chat still waiting to be indexed is exactly its list; an indexed one its order.
  local indexed = pending(index, list) == 0
  local mode, ids, more = ARGV[1], nil, 0
  local total = indexed and redis.call('ZCARD', order) or redis.call('LLEN', list)
  if mode == 'page' then
    if indexed then
      ids = redis.call('ZRANGE', order, ARGV[2], ARGV[3])
    else
      ids = redis.call('LRANGE', list, ARGV[2], ARGV[3])
    end
  else
    if not indexed then
      return {-1}
    end
    local s = redis.call('ZSCORE', order, ARGV[2])
    if not s then
      return {-3}
    end
    local limit = tonumber(ARGV[3])
    if mode == 'before' then
      local newest_first = redis.call('ZREVRANGEBYSCORE', order, '(' .. s, '-inf', 'LIMIT', 0, limit + 1)
      ids = {}
      for j = math.min(#newest_first, limit), 1, -1 do
        ids[#ids + 1] = newest_first[j]
      end
      if #newest_first > limit then
        more = 1
      end
    else
      ids = redis.call('ZRANGEBYSCORE', order, '(' .. s, '+inf', 'LIMIT', 0, limit + 1)
      if #ids > limit then
        more = 1
        ids[#ids] = nil
      end
    end
  end
  local reads = {}
  if #ARGV >= 4 then
    local positions = redis.call('HMGET', read, unpack(ARGV, 4))
    for j = 1, #positions do
      reads[j] = read_up_to(order, positions[j])
    end
  end
  local records = {}
  if #ids > 0 then
    records = redis.call('HMGET', data, unpack(ids))
  end
  return {1, total, records, more, reads}
end
"
        )
    };
}

/// A page of history: the chat's size, the messages of one range, the reader's channel position
/// and the participants' read positions. Pages of an indexed chat are read from its order (a
/// delete leaves the id in the list), of one that still waits to be from its list.
/// KEYS: chat list, chat data hash, the channel's position hash and history, the chat's index,
/// order and read hash. ARGV: `page`, first and last index (negative, from the newest end); or
/// `before`/`after`, the cursor id, the most messages; then the users whose read positions to show.
/// Returns `{1, total, {json or false, …}, epoch, seq, more, {message id or false, …}}` (false
/// where an id has no data; more 1 when the chat has more beyond the page that way), or `{-1}` when
/// the chat must be indexed first, `{-3}` for an unknown cursor.
const HISTORY: &str = concat!(
    lua_epoch_of!(),
    lua_history_page!(),
    r"
local epoch = epoch_of(KEYS[3], KEYS[4])
local seq = tonumber(redis.call('HGET', KEYS[3], 's') or '0')
local page = history_page(KEYS[1], KEYS[2], KEYS[5], KEYS[6], KEYS[7])
if page[1] ~= 1 then
  return page
end
return {1, page[2], page[3], epoch, seq, page[4], page[5]}
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
    lua_epoch_of!(),
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

/// `read_target`: the message a read names in a chat's order (`''`: the latest) and its ordinal;
/// `nil` and -2 for an empty chat, -3 for a message not in it.
macro_rules! lua_read_target {
    () => {
        r"
local function read_target(order, id)
  if id == '' then
    local last = redis.call('ZREVRANGE', order, 0, 0, 'WITHSCORES')
    if not last[1] then
      return nil, -2
    end
    return last[1], tonumber(last[2])
  end
  if redis.call('ZCARD', order) == 0 then
    return nil, -2
  end
  local s = redis.call('ZSCORE', order, id)
  if not s then
    return nil, -3
  end
  return id, tonumber(s)
end
"
    };
}

/// Move a reader's position forward to a message (or the chat's latest) and announce it.
/// KEYS: chat list, the chat's index, order, the reader's messages there and read hash, the
/// reader's unread hash, then per channel to announce on its position hash and history.
/// ARGV: message id (empty: the latest), reader id, now (epoch ms), the history window's size and
/// ttl (ms), the chat's field in the reader's unread hash (a DM; empty for a topic), the number m
/// of channels, then per channel (payload head, channel, `1` when its event carries the reader's
/// unread count).
/// Returns `{1 moved or 0 not, message id or false, unread}`, or `{-1}` when the chat must be
/// indexed first, `{-2}` when it has no message, `{-3}` when the message is not in it.
const READ: &str = concat!(
    lua_pending!(),
    lua_read_target!(),
    lua_read_up_to!(),
    lua_move_read!(),
    lua_announce_read!(),
    r"
if pending(KEYS[2], KEYS[1]) > 0 then
  return {-1}
end
local id, s = read_target(KEYS[3], ARGV[1])
if not id then
  return {s}
end
local unread, moved = move_read(KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[2], ARGV[6], s)
if not moved then
  local r = redis.call('HGET', KEYS[5], ARGV[2])
  return {0, read_up_to(KEYS[3], tonumber(r)), unread}
end
announce_read(7, 8, tonumber(ARGV[7]), id, unread, ARGV[3], ARGV[4], ARGV[5])
return {1, id, unread}
"
);

/// An inbox page, read at once: the owner's channel position, the inbox's size, the page's entries
/// each with its chat's latest message and the owner's unread count there, and the owner's total.
/// A DM's count is the owner's counter for it; a topic's is counted from its order. A chat the
/// original service wrote gets its latest-message entry as it is read.
/// KEYS: the owner's channel position hash and history, inbox, the latest-message hash, the owner's
/// unread hash. ARGV: first and last rank, the owner's id, the tenant's key base.
/// Returns `{-1}` when some chat of the owner's inbox may wait to be indexed (index them all first),
/// else `{epoch, seq, total, unread total}` followed, per entry, by its member, score, latest JSON
/// (or false) and unread count (-1 when the chat must be indexed first), flat (cheaper to build
/// than nested). The chats' keys are derived from the members by the rule of
/// `Keyspace::chat_suffix` (members are written without leading zeros).
const INBOX: &str = concat!(
    lua_epoch_of!(),
    lua_pending!(),
    lua_unread_after!(),
    r"
if redis.call('HGET', KEYS[5], 'i') ~= '1' and redis.call('EXISTS', KEYS[3]) == 1 then
  return {-1}
end
local epoch = epoch_of(KEYS[1], KEYS[2])
local seq = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
local total = redis.call('ZCARD', KEYS[3])
local page = redis.call('ZREVRANGE', KEYS[3], ARGV[1], ARGV[2], 'WITHSCORES')
local owner, base = ARGV[3], ARGV[4]
local suffixes, direct = {}, {}
for i = 1, #page, 2 do
  -- `user-<id>` or `topic-<id>` (string.match costs several times more)
  local member, suffix, dm = page[i], '', false
  if string.byte(member, 1) == 117 then
    local lo, hi = owner, string.sub(member, 6)
    if #lo > #hi or (#lo == #hi and lo > hi) then
      lo, hi = hi, lo
    end
    suffix, dm = 'dm:' .. lo .. '-' .. hi, true
  elseif string.byte(member, 1) == 116 then
    suffix = 'topic:' .. string.sub(member, 7)
  end
  suffixes[#suffixes + 1], direct[#direct + 1] = suffix, dm
end
if #suffixes == 0 then
  return {epoch, seq, total, tonumber(redis.call('HGET', KEYS[5], 't') or '0')}
end
local latest = redis.call('HMGET', KEYS[4], unpack(suffixes))
local counts = redis.call('HMGET', KEYS[5], 't', unpack(suffixes))
local answer = {epoch, seq, total, tonumber(counts[1] or '0')}
for n = 1, #suffixes do
  local suffix, message, unread = suffixes[n], latest[n], 0
  if direct[n] then
    unread = counts[n + 1] or 0
  end
  if suffix ~= '' and not (message and direct[n]) then
    local chat = base .. suffix
    if not message then
      local last = redis.call('LINDEX', chat, -1)
      message = last and redis.call('HGET', chat .. ':data', last)
      if message then
        redis.call('HSET', KEYS[4], suffix, message)
      end
    end
    if direct[n] then
      unread = counts[n + 1] or 0
    elseif pending(chat .. ':index', chat) > 0 then
      unread = -1
    else
      local r = redis.call('HGET', chat .. ':read', owner)
      unread = unread_after(chat .. ':order', chat .. ':by:' .. owner, r and tonumber(r))
    end
  end
  local at = 4 * n
  answer[at + 1], answer[at + 2], answer[at + 3], answer[at + 4] = page[2 * n - 1], page[2 * n], message or false, unread
end
return answer
"
);

/// The next of a chat's entries that wait to be indexed (the newest of them): how many wait, the
/// lowest ordinal given so far, and up to ARGV[1] ids (oldest first) with their message JSON.
/// KEYS: chat list, chat data hash, the chat's index. Returns `{pending, lowest, {id, …}, {json or
/// false, …}}`.
const INDEX_READ: &str = concat!(
    lua_pending!(),
    r"
local p = pending(KEYS[3], KEYS[1], true)
local o = tonumber(redis.call('HGET', KEYS[3], 'o'))
if p == 0 then
  return {0, o, {}, {}}
end
local ids = redis.call('LRANGE', KEYS[1], math.max(0, p - tonumber(ARGV[1])), p - 1)
return {p, o, ids, redis.call('HMGET', KEYS[2], unpack(ids))}
"
);

/// Index the entries `INDEX_READ` gave, unless the chat changed in between: each gets an ordinal
/// below every earlier one, joins the chat's order and its author's messages, and (in a DM) counts
/// as unread for the participant who did not write it (no read position exists before a chat is
/// indexed).
/// KEYS: the chat's index and order, then per author their messages there; for a DM, last, the
/// unread hashes of its two participants. ARGV: the pending count read, the number k of entries,
/// `1` for a DM, its two participants' ids and the chat's field in their unread hashes, then per
/// entry its id and its author's place among the author keys (0: unreadable, left out), then per
/// author key the author's id.
/// Returns 1 when applied, 0 when the chat changed (read again).
const INDEX_WRITE: &str = r"
if redis.call('HGET', KEYS[1], 'p') ~= ARGV[1] then
  return 0
end
local k, dm = tonumber(ARGV[2]), ARGV[3] == '1'
local lowest = tonumber(redis.call('HGET', KEYS[1], 'o'))
local authors = {}
local first_author = 7 + 2 * k
for j = first_author, #ARGV do
  authors[j - first_author + 1] = ARGV[j]
end
local unread = {0, 0}
for j = 1, k do
  local id, slot = ARGV[5 + 2 * j], tonumber(ARGV[6 + 2 * j])
  local s = lowest - k + j - 1
  if slot > 0 then
    redis.call('ZADD', KEYS[2], s, id)
    redis.call('ZADD', KEYS[2 + slot], s, s)
    if authors[slot] ~= ARGV[4] then
      unread[1] = unread[1] + 1
    end
    if authors[slot] ~= ARGV[5] then
      unread[2] = unread[2] + 1
    end
  end
end
redis.call('HSET', KEYS[1], 'p', tonumber(ARGV[1]) - k, 'o', lowest - k)
if dm then
  for side = 1, 2 do
    local hash = KEYS[#KEYS - 2 + side]
    redis.call('HINCRBY', hash, 't', unread[side])
    redis.call('HINCRBY', hash, ARGV[6], unread[side])
  end
end
return 1
";

/// Mark a user's inbox indexed (`i` of their unread hash) unless a chat that waits to be indexed
/// joined it since the walk began (`w` counts those; the walk read it first).
/// KEYS: the unread hash. ARGV: `w` as the walk read it (empty: none).
const MARK_INDEXED: &str = r"
if (redis.call('HGET', KEYS[1], 'w') or '') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'i', '1')
return 1
";

/// Replace, mark seen or delete a message if it is still exactly the version the caller decided
/// on, keep the chat's latest message, order and counters right, and announce the change (a
/// `seen` also moves the marker's read position there, announcing that too).
/// KEYS: chat data hash, chat list, the latest-message hash, the chat's index, order, the messages
/// there of the author (`set`, `del`) or of the marker (`seen`), its read hash, and the unread hash
/// of the DM's recipient (`del`) or of the marker (`seen`); then per `read` channel its position
/// hash and history; then per channel of the chat's audience its position hash and its history.
/// ARGV: message id, expected JSON, `set`, `seen` or `del`, new JSON, event payload, the chat's
/// field in the latest-message hash, now (epoch ms), the history window's size and ttl (ms), the id
/// of the recipient (`del`) or marker (`seen`), `1` for a DM, the number m of `read` channels, per
/// `read` channel (payload head, channel, counts), then the channels to publish the event on.
/// A `seen` or a delete needs the chat indexed (a delete leaves the id in the list and takes it out
/// of the order, whose cost does not grow with the chat).
/// Returns 1 when applied, 0 when the message changed (or vanished) in between, -1 when the chat
/// must be indexed first.
const COMPARE_AND_SET: &str = concat!(
    lua_pending!(),
    lua_move_read!(),
    lua_announce_read!(),
    r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
local op, dm, m = ARGV[3], ARGV[11] == '1', tonumber(ARGV[12])
if op ~= 'set' and pending(KEYS[4], KEYS[2], true) > 0 then
  return -1
end
-- Whether the message is the chat's latest: its JSON is the latest-message hash's.
local latest = redis.call('HGET', KEYS[3], ARGV[6])
if op == 'del' then
  -- The chat is indexed: its order, not the list, holds its messages, so the id stays in the
  -- original's list (removing it there would scan the whole list).
  redis.call('HDEL', KEYS[1], ARGV[1])
  local s = redis.call('ZSCORE', KEYS[5], ARGV[1])
  if s then
    redis.call('ZREM', KEYS[5], ARGV[1])
    redis.call('ZREM', KEYS[6], s)
    local r = redis.call('HGET', KEYS[7], ARGV[10])
    if dm and (not r or tonumber(s) > tonumber(r)) then
      redis.call('HINCRBY', KEYS[8], 't', '-1')
      redis.call('HINCRBY', KEYS[8], ARGV[6], '-1')
    end
  end
  if not latest or latest == ARGV[2] then
    local last = redis.call('ZREVRANGE', KEYS[5], '0', '0')[1]
    local message = last and redis.call('HGET', KEYS[1], last)
    if message then
      redis.call('HSET', KEYS[3], ARGV[6], message)
    else
      redis.call('HDEL', KEYS[3], ARGV[6])
    end
  end
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
  if latest == ARGV[2] then
    redis.call('HSET', KEYS[3], ARGV[6], ARGV[4])
  end
end
local audience = 13 + 3 * m
for i = audience, #ARGV do
  local k = 8 + 2 * m + 2 * (i - audience)
  record(KEYS[k + 1], KEYS[k + 2], ARGV[i], ARGV[5], ARGV[7], ARGV[8], ARGV[9])
end
if op == 'seen' then
  local s = redis.call('ZSCORE', KEYS[5], ARGV[1])
  if s then
    local unread, moved = move_read(KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[10], dm and ARGV[6] or '', tonumber(s))
    if moved then
      announce_read(9, 13, m, ARGV[1], unread, ARGV[7], ARGV[8], ARGV[9])
    end
  end
end
return 1
"
);

/// `live_in`: whether a live instance (`KEYS[1]`'s deadline after `now`) holds a connection of the
/// owner of `presence` (`Keyspace::presence`); drops the members whose instance lapsed, whose
/// sweep then finds nothing left to announce.
macro_rules! lua_live_in {
    () => {
        r"
local function live_in(presence, instances, now)
  local live = false
  for _, instance in ipairs(redis.call('ZRANGE', presence, 0, -1)) do
    local deadline = redis.call('ZSCORE', instances, instance)
    if deadline and tonumber(deadline) > now then
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

/// Move an instance's deadline. KEYS: the instances. ARGV: instance, deadline, now, `1` to start
/// vouching under a new name (else only a live instance renews). Returns 1, or 0 when the instance
/// had lapsed (nothing written).
const PRESENCE_RENEW: &str = r"
if ARGV[4] ~= '1' then
  local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if not deadline or tonumber(deadline) <= tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
";

/// Users now connected to an instance. KEYS: the instances, the instance's users, then per user
/// their presence key and activity key. ARGV: instance, now.
/// Returns `{0}` when the instance had lapsed (nothing written), else `{1, …}` and the 1-based
/// positions (among the users) of those who were live nowhere before.
const PRESENCE_JOIN: &str = concat!(
    lua_live_in!(),
    r"
local now = tonumber(ARGV[2])
local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not deadline or tonumber(deadline) <= now then
  return {0}
end
local answer = {1}
for i = 1, (#KEYS - 2) / 2 do
  local presence, activity = KEYS[2 * i + 1], KEYS[2 * i + 2]
  if not live_in(presence, KEYS[1], now) then
    redis.call('HSET', activity, 'status', 'active')
    answer[#answer + 1] = i
  end
  redis.call('ZADD', presence, ARGV[2], ARGV[1])
  redis.call('SADD', KEYS[2], presence)
end
return answer
"
);

/// An instance no longer has a connection of a user. KEYS: presence key, activity key, the
/// instances, the instance's users. ARGV: instance, now. Returns 1 when the user is now live
/// nowhere (and marked inactive) after having been live.
const PRESENCE_LEAVE: &str = concat!(
    lua_live_in!(),
    r"
local was_live = live_in(KEYS[1], KEYS[3], tonumber(ARGV[2]))
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[4], KEYS[1])
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[2], 'status', 'inactive')
  if was_live then
    return 1
  end
end
return 0
"
);

/// One batch of the users of a lapsed instance. KEYS: the instances. ARGV: now, the batch size.
/// Takes up to a batch of the first lapsed instance's users (`SPOP`: each is taken by one sweeping
/// instance) and drops the instance from each user's presence; a user it held last is marked
/// inactive — the activity key sits beside the presence key (`…:presence:<uid>` →
/// `…:activity:<uid>`, the rule of `Keyspace`). The instance itself goes once its users are all
/// taken. Returns `{0}` when no instance had lapsed, else `{1, …}` and the presence keys of the
/// users now live nowhere.
const PRESENCE_SWEEP: &str = concat!(
    lua_live_in!(),
    r"
local now, size = tonumber(ARGV[1]), tonumber(ARGV[2])
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)[1]
if not lapsed then
  return {0}
end
local batch = redis.call('SPOP', KEYS[1] .. ':' .. lapsed, size)
local answer = {1}
for _, presence in ipairs(batch) do
  if redis.call('ZREM', presence, lapsed) == 1 and not live_in(presence, KEYS[1], now) then
    local activity = string.gsub(presence, ':presence:(%d+)$', ':activity:%1')
    redis.call('HSET', activity, 'status', 'inactive')
    answer[#answer + 1] = presence
  end
end
if #batch < size then
  redis.call('ZREM', KEYS[1], lapsed)
end
return answer
"
);

/// The scripts, hashed once.
#[derive(Debug)]
pub(super) struct Scripts {
    pub(super) append: Script,
    pub(super) history: Script,
    pub(super) replay: Script,
    pub(super) read: Script,
    pub(super) inbox: Script,
    pub(super) index_read: Script,
    pub(super) index_write: Script,
    pub(super) mark_indexed: Script,
    pub(super) compare_and_set: Script,
    pub(super) presence_renew: Script,
    pub(super) presence_join: Script,
    pub(super) presence_leave: Script,
    pub(super) presence_sweep: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            append: Script::new(APPEND),
            history: Script::new(HISTORY),
            replay: Script::new(REPLAY),
            read: Script::new(READ),
            inbox: Script::new(INBOX),
            index_read: Script::new(INDEX_READ),
            index_write: Script::new(INDEX_WRITE),
            mark_indexed: Script::new(MARK_INDEXED),
            compare_and_set: Script::new(COMPARE_AND_SET),
            presence_renew: Script::new(PRESENCE_RENEW),
            presence_join: Script::new(PRESENCE_JOIN),
            presence_leave: Script::new(PRESENCE_LEAVE),
            presence_sweep: Script::new(PRESENCE_SWEEP),
        }
    }
}
