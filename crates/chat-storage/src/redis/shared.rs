//! What both Redis stores do alike: a channel's replay (its keys share a slot in either layout),
//! a history query's script arguments and answer, a decided change as the compare-and-set
//! scripts take it, reading DM partners from an inbox, and who of some users is online.

use std::collections::HashMap;

use chat_domain::{
    Channel, Chat, ChatEvent, ChatTarget, HistoryQuery, HistoryWindow, Keyspace, Message, MessageId, Timestamp, UserId,
};
use redis::aio::ConnectionLike;

use super::scripts::Scripts;
use super::store::{decode_or_skip, message_id, part, position, unavailable};
use crate::{Change, HistoryPage, Replay, StoreError, event_record, record};

/// The history window's ttl in ms, as the scripts take it.
pub(super) fn history_ttl_ms(history: HistoryWindow) -> u64 {
    u64::try_from(history.ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// [`crate::EventBus::replay`] on either store: the `REPLAY` script on the channel's position and
/// history.
pub(super) async fn replay(
    scripts: &Scripts,
    connection: &mut impl ConnectionLike,
    keys: &Keyspace,
    history: HistoryWindow,
    (channel, since, limit): (Channel, Option<chat_domain::Position>, usize),
) -> Result<Replay, StoreError> {
    let oldest = Timestamp::now().epoch_millis().saturating_sub(i64::try_from(history_ttl_ms(history)).unwrap_or(0));
    type Entry = (String, HashMap<String, Vec<u8>>);
    let (epoch, seq, recovered, entries): (String, u64, i64, Vec<Entry>) = scripts
        .replay
        .key(keys.event_position(channel))
        .key(keys.event_history(channel))
        .arg(since.map(|since| since.epoch.to_string()).unwrap_or_default())
        .arg(since.map_or(0, |since| since.seq))
        .arg(limit.max(1))
        .arg(history.size)
        .arg(oldest)
        .invoke_async(connection)
        .await
        .map_err(unavailable)?;
    let now = position(&epoch, seq)?;
    let missed = match recovered {
        1 => Some(
            entries
                .iter()
                .map(|(id, fields)| {
                    let payload = fields.get("d").map(Vec::as_slice).unwrap_or_default();
                    event_record::decode_entry(now.epoch, id, payload)
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        _ => None,
    };
    Ok(Replay { now, missed })
}

/// Adds a history query's arguments (as `HISTORY` and `CHAT_HISTORY` take them) and the users
/// whose read positions to show.
pub(super) fn history_args(call: &mut redis::ScriptInvocation<'_>, query: HistoryQuery, readers: &[UserId]) {
    match query {
        HistoryQuery::Page(page) => {
            let skip = i64::try_from(page.skip()).unwrap_or(i64::MAX - 1);
            call.arg("page").arg(-(skip.saturating_add(i64::from(page.per_page())))).arg(-(skip + 1));
        }
        HistoryQuery::Before { id, limit } => _ = call.arg("before").arg(id.to_string()).arg(limit),
        HistoryQuery::After { id, limit } => _ = call.arg("after").arg(id.to_string()).arg(limit),
    }
    for user in readers {
        call.arg(user.get());
    }
}

/// The parts of a history answer after its status: `{total, records, more, read ids}` starting
/// at `at` (the more flag at `at + 2`), with the reader's channel position.
pub(super) fn history_page(
    answer: &[redis::Value],
    at: (usize, usize),
    query: HistoryQuery,
    readers: Vec<UserId>,
    position: chat_domain::Position,
) -> Result<HistoryPage, StoreError> {
    let (records_at, more_at) = at;
    let total: u64 = part(answer, records_at - 1)?;
    let records: Vec<Option<String>> = part(answer, records_at)?;
    let more = match query {
        HistoryQuery::Page(page) => page.skip() + u64::from(page.per_page()) < total,
        _ => part::<i64>(answer, more_at)? == 1,
    };
    let read_ids: Vec<Option<String>> = part(answer, more_at + 1)?;
    let read = readers
        .into_iter()
        .zip(read_ids)
        .map(|(user, id)| Ok((user, message_id(id)?)))
        .collect::<Result<_, StoreError>>()?;
    let messages = records.iter().flatten().filter_map(|json| decode_or_skip(json)).collect();
    Ok(HistoryPage { total, messages, position, more, read })
}

/// [`crate::PresenceStore::dm_partners`] on either store: the first `limit` members of the inbox at
/// `inbox` that are DMs (its `user-<id>` entries), newest first.
pub(super) async fn dm_partners(
    connection: &mut impl ConnectionLike,
    inbox: String,
    limit: usize,
) -> Result<Vec<UserId>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let last = isize::try_from(limit - 1).unwrap_or(isize::MAX);
    let members: Vec<String> =
        redis::cmd("ZREVRANGE").arg(inbox).arg(0).arg(last).query_async(connection).await.map_err(unavailable)?;
    Ok(members
        .iter()
        .filter_map(|member| match ChatTarget::parse_member(member) {
            Ok(ChatTarget::User(other)) => Some(other),
            _ => None,
        })
        .collect())
}

/// [`crate::PresenceStore::active`]'s answer on either store: those of `users` (each with the
/// instances `held` lists in its presence, in the same order) held by one of the `live` instances.
pub(super) fn held_by_live(users: &[UserId], held: &[Vec<String>], live: &[String]) -> Vec<UserId> {
    users
        .iter()
        .zip(held)
        .filter(|(_, instances)| instances.iter().any(|instance| live.contains(instance)))
        .map(|(user, _)| *user)
        .collect()
}

/// A change [`crate::Decide`] chose, as the compare-and-set scripts take it.
pub(super) struct Planned {
    /// `set`, `seen` or `del`.
    pub(super) operation: &'static str,
    /// Whose messages in the chat the script reads: the marker's for a `seen`, else the author's.
    pub(super) mine: UserId,
    /// Whose unread count changes: the marker's (`seen`) or a DM recipient's (`del`).
    pub(super) counted: UserId,
    /// Who marks the message seen, for a `seen`.
    pub(super) seen_by: Option<UserId>,
    /// The new JSON (empty for a delete).
    pub(super) replacement: String,
    /// The message as the caller gets it back.
    pub(super) result: Message,
    /// The event announcing the change.
    pub(super) event: ChatEvent,
}

/// Plans `change` of message `id` of `chat`, now `current`.
pub(super) fn plan(chat: Chat, id: MessageId, current: Message, change: Change) -> Planned {
    let seen_by = change.seen_by();
    let (operation, mine, counted) = match (&change, chat.seen_by(current.author)) {
        (Change::MarkSeen { by, .. }, _) => ("seen", *by, *by),
        (Change::Remove, ChatTarget::User(recipient)) => ("del", current.author, recipient),
        (Change::Remove, ChatTarget::Topic(_)) => ("del", current.author, current.author),
        (Change::Replace(_), _) => ("set", current.author, current.author),
    };
    let (replacement, result, event) = match change.replacement(chat) {
        Some((updated, event)) => (record::encode(&updated), updated, event),
        None => (String::new(), current, ChatEvent::MessageDeleted { chat, id }),
    };
    Planned { operation, mine, counted, seen_by, replacement, result, event }
}
