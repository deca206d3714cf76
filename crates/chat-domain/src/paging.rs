//! Paging of histories and inboxes: `page` and `per_page` (or the original's `limit`).

use crate::{DomainError, MessageId};

/// The defaults and the ceiling for `per_page`, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagingLimits {
    /// `per_page` when the client gives none.
    pub default_per_page: u32,
    /// A larger `per_page` is clamped to this.
    pub max_per_page: u32,
}

impl Default for PagingLimits {
    fn default() -> Self {
        Self { default_per_page: 10, max_per_page: 100 }
    }
}

/// A valid page request: `page >= 1`, `1 <= per_page <= max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    page: u32,
    per_page: u32,
}

impl PageRequest {
    /// Parses the query values. Each value given must be a positive integer, else it is refused
    /// (`limit` too when `per_page` is given). `per_page` wins over `limit` when both are given; a
    /// missing value takes its default, and a larger `per_page` than allowed is clamped.
    pub fn parse(
        page: Option<&str>,
        per_page: Option<&str>,
        limit: Option<&str>,
        limits: PagingLimits,
    ) -> Result<Self, DomainError> {
        let page = page.map(|p| positive("page", p)).transpose()?.unwrap_or(1);
        let per_page = per_page.map(|p| positive("per_page", p)).transpose()?;
        let limit = limit.map(|l| positive("limit", l)).transpose()?;
        let per_page = match per_page.or(limit) {
            Some(size) => size.min(limits.max_per_page.max(1)),
            None => limits.default_per_page.clamp(1, limits.max_per_page.max(1)),
        };
        Ok(Self { page, per_page })
    }

    /// A page request from numbers already known to be valid (`0` is raised to `1`).
    pub fn new(page: u32, per_page: u32) -> Self {
        Self { page: page.max(1), per_page: per_page.max(1) }
    }

    /// The 1-based page number.
    pub fn page(self) -> u32 {
        self.page
    }

    /// Entries per page.
    pub fn per_page(self) -> u32 {
        self.per_page
    }

    /// How many entries come before this page (from the newest end).
    pub fn skip(self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.per_page)
    }

    /// How many pages `total` entries fill: `ceil(total / per_page)`, and 1 when there are none
    /// (an empty inbox or chat is one empty page, as the original service answered).
    pub fn total_pages(self, total: u64) -> u64 {
        total.div_ceil(u64::from(self.per_page)).max(1)
    }
}

/// Which messages of a chat a history page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryQuery {
    /// The original's page numbers, counted from the newest message.
    Page(PageRequest),
    /// Up to `limit` messages strictly older than message `id`, the nearest ones.
    Before {
        /// The cursor: a message of the chat.
        id: MessageId,
        /// The most messages to return.
        limit: u32,
    },
    /// Up to `limit` messages strictly newer than message `id`, the nearest ones.
    After {
        /// The cursor: a message of the chat.
        id: MessageId,
        /// The most messages to return.
        limit: u32,
    },
}

impl HistoryQuery {
    /// Parses the query values: `before` or `after` (one of them; not with `page`) pages by cursor,
    /// sized by `per_page` or `limit` as [`PageRequest::parse`] says; otherwise the page form.
    pub fn parse(
        page: Option<&str>,
        per_page: Option<&str>,
        limit: Option<&str>,
        before: Option<&str>,
        after: Option<&str>,
        limits: PagingLimits,
    ) -> Result<Self, DomainError> {
        let cursor = |name: &str, text: &str| {
            MessageId::parse(text).map_err(|_| DomainError::argument(format!("{name} must be a message id")))
        };
        let size = || PageRequest::parse(None, per_page, limit, limits).map(PageRequest::per_page);
        match (before, after) {
            (None, None) => PageRequest::parse(page, per_page, limit, limits).map(Self::Page),
            (Some(_), Some(_)) => Err(DomainError::argument("give either before or after, not both")),
            (Some(_), None) | (None, Some(_)) if page.is_some() => {
                Err(DomainError::argument("page cannot be combined with before or after"))
            }
            (Some(id), None) => Ok(Self::Before { id: cursor("before", id)?, limit: size()? }),
            (None, Some(id)) => Ok(Self::After { id: cursor("after", id)?, limit: size()? }),
        }
    }

    /// The most messages the page may hold.
    pub fn limit(self) -> u32 {
        match self {
            Self::Page(page) => page.per_page(),
            Self::Before { limit, .. } | Self::After { limit, .. } => limit,
        }
    }
}

fn positive(name: &str, value: &str) -> Result<u32, DomainError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0 && !value.starts_with('+'))
        .ok_or_else(|| DomainError::argument(format!("{name} must be a positive integer")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: PagingLimits = PagingLimits { default_per_page: 10, max_per_page: 100 };

    fn parse(page: Option<&str>, per_page: Option<&str>, limit: Option<&str>) -> Result<(u32, u32), DomainError> {
        PageRequest::parse(page, per_page, limit, LIMITS).map(|p| (p.page(), p.per_page()))
    }

    #[test]
    fn defaults_and_both_names_for_the_page_size() {
        assert_eq!(parse(None, None, None), Ok((1, 10)));
        assert_eq!(parse(Some("3"), Some("5"), None), Ok((3, 5)));
        assert_eq!(parse(None, None, Some("7")), Ok((1, 7)));
        assert_eq!(parse(None, Some("5"), Some("7")), Ok((1, 5)));
    }

    #[test]
    fn large_page_sizes_are_clamped() {
        assert_eq!(parse(None, Some("1000"), None), Ok((1, 100)));
    }

    #[test]
    fn anything_but_a_positive_integer_is_refused() {
        for bad in ["0", "-1", "1.5", "abc", "", "+2", "99999999999"] {
            assert!(parse(Some(bad), None, None).is_err(), "page {bad:?}");
            assert!(parse(None, Some(bad), None).is_err(), "per_page {bad:?}");
            assert!(parse(None, None, Some(bad)).is_err(), "limit {bad:?}");
            // Found by schemathesis: a bad `limit` beside a good `per_page` used to pass unread.
            assert!(parse(None, Some("5"), Some(bad)).is_err(), "limit {bad:?} beside per_page");
        }
    }

    #[test]
    fn cursors_page_by_message_id() {
        let id = MessageId::random();
        let text = id.to_string();
        let query = |page, before, after| HistoryQuery::parse(page, Some("5"), None, before, after, LIMITS);
        assert_eq!(query(None, Some(text.as_str()), None), Ok(HistoryQuery::Before { id, limit: 5 }));
        assert_eq!(query(None, None, Some(text.as_str())), Ok(HistoryQuery::After { id, limit: 5 }));
        assert_eq!(query(Some("2"), None, None), Ok(HistoryQuery::Page(PageRequest::new(2, 5))));
        assert!(query(None, Some(text.as_str()), Some(text.as_str())).is_err());
        assert!(query(Some("1"), Some(text.as_str()), None).is_err());
        assert!(query(None, Some("nope"), None).is_err());
        let big = HistoryQuery::parse(None, None, Some("1000"), None, Some(text.as_str()), LIMITS);
        assert_eq!(big.map(HistoryQuery::limit), Ok(100));
    }

    #[test]
    fn page_arithmetic() {
        let page = PageRequest::new(3, 10);
        assert_eq!(page.skip(), 20);
        assert_eq!(page.total_pages(0), 1);
        assert_eq!(page.total_pages(1), 1);
        assert_eq!(page.total_pages(21), 3);
        assert_eq!(page.total_pages(30), 3);
    }
}
