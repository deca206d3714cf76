//! Property tests of the domain's parsing and validation: what is accepted is exactly what the
//! rules say, and what is accepted round-trips.

#![allow(clippy::unwrap_used)]

use chat_domain::ids::MAX_ID;
use chat_domain::{Chat, ChatTarget, MessageText, PageRequest, PagingLimits, Timestamp, TopicId, UserId};
use proptest::prelude::*;

proptest! {
    #[test]
    fn an_id_is_accepted_exactly_when_it_is_digits_in_range(text in "\\PC{0,24}") {
        let expected = !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit())
            && text.parse::<u64>().is_ok_and(|n| (1..=MAX_ID).contains(&n));
        prop_assert_eq!(UserId::parse(&text).is_ok(), expected);
        prop_assert_eq!(TopicId::parse(&text).is_ok(), expected);
    }

    #[test]
    fn ids_round_trip(n in 1..=MAX_ID) {
        let id = UserId::new(n).unwrap();
        prop_assert_eq!(UserId::parse(&id.to_string()), Ok(id));
        prop_assert_eq!(UserId::from_json(&serde_json::json!(n)), Ok(id));
        prop_assert_eq!(UserId::from_json(&serde_json::json!(n.to_string())), Ok(id));
    }

    #[test]
    fn inbox_members_round_trip(n in 1..=MAX_ID, topic in any::<bool>()) {
        let target = if topic { ChatTarget::Topic(TopicId::new(n).unwrap()) } else { ChatTarget::User(UserId::new(n).unwrap()) };
        prop_assert_eq!(ChatTarget::parse_member(&target.to_string()), Ok(target));
    }

    #[test]
    fn both_sides_of_a_dm_name_the_same_chat(a in 1..=MAX_ID, b in 1..=MAX_ID) {
        let (a, b) = (UserId::new(a).unwrap(), UserId::new(b).unwrap());
        let chat = Chat::between(a, ChatTarget::User(b));
        prop_assert_eq!(chat, Chat::between(b, ChatTarget::User(a)));
        if a != b {
            prop_assert_eq!(chat.seen_by(a), ChatTarget::User(b));
            prop_assert_eq!(Chat::between(a, chat.seen_by(a)), chat);
        }
    }

    #[test]
    fn paging_accepts_positive_integers_and_clamps(page in 1..=u32::MAX, per_page in 1..=u32::MAX, max in 1..=1000_u32) {
        let limits = PagingLimits { default_per_page: 10, max_per_page: max };
        let parsed = PageRequest::parse(Some(&page.to_string()), Some(&per_page.to_string()), None, limits).unwrap();
        prop_assert_eq!(parsed.page(), page);
        prop_assert_eq!(parsed.per_page(), per_page.min(max));
        prop_assert_eq!(parsed.skip(), u64::from(page - 1) * u64::from(per_page.min(max)));
    }

    #[test]
    fn paging_refuses_everything_else(text in "\\PC{0,12}") {
        prop_assume!(text.parse::<u32>().map_or(true, |n| n == 0) || text.starts_with('+'));
        prop_assert!(PageRequest::parse(Some(&text), None, None, PagingLimits::default()).is_err());
        prop_assert!(PageRequest::parse(None, None, Some(&text), PagingLimits::default()).is_err());
    }

    #[test]
    fn text_is_kept_exactly_when_it_fits(text in "\\PC{0,40}", max in 1..40_usize) {
        let fits = !text.trim().is_empty() && text.chars().count() <= max;
        match MessageText::parse(text.clone(), max) {
            Ok(parsed) => {
                prop_assert!(fits);
                prop_assert_eq!(parsed.as_str(), text.as_str());
            }
            Err(_) => prop_assert!(!fits),
        }
    }

    #[test]
    fn timestamps_round_trip_through_iso(millis in 0..253_402_300_799_999_i64) {
        let at = Timestamp::from_epoch_millis(millis);
        prop_assert_eq!(Timestamp::parse_iso(at.iso().as_str()), Ok(at));
    }
}
