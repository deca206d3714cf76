//! The platform-API directory: profiles fetched from the platform's `/v1/users` and `/v1/topics`
//! (the original service's "model"), batched, cached and bounded in time.
//!
//! The original asked the API once per lookup, with duplicate ids, a 5 s timeout and no cache,
//! and turned any API error into a 500. Here a lookup asks only for the ids not in the cache
//! ([`crate::profile_cache`]: refreshed ahead of expiry, one request per id in flight, the last
//! known profile through an outage), once each, and a slow or failing API degrades profiles to
//! `{"id": N}` instead of failing chat.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chat_domain::{TopicId, UserId};
use reqwest::Url;

use crate::directory::{DirectoryId, entry_id};
use crate::profile_cache::{Fetch, Fetched, ProfileCache, ProfileStats};
use crate::{Directory, IdentityError, Profile};

/// The longest cache TTL accepted. Profiles change (renames, new pictures), and a day is
/// already far longer than any sensible setting.
const MAX_CACHE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The collections of the API, and the fields chatd asks of each (the original's).
const USERS: &str = "v1/users";
const USER_FIELDS: &str = "id,username,role,picture_url,profile_url";
const TOPICS: &str = "v1/topics";
const TOPIC_FIELDS: &str = "id,title,status,cover_image_thumbnail";

/// The longest time past the TTL a profile may be served through an outage.
const MAX_CACHE_STALE: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Typed settings of the platform API directory.
#[derive(Debug, Clone)]
pub struct PlatformSettings {
    /// The API's base URL, e.g. `http://localhost:3000/` (trailing slash optional; a path such
    /// as `http://host/api` is kept, giving `http://host/api/v1/users`).
    pub api_url: String,
    /// The User-Agent sent with every request; default `Senna-Sockets-Server`, as the original.
    pub user_agent: String,
    /// The limit for a whole request (connect, send, answer, body); default 2 s.
    pub timeout: Duration,
    /// How long a fetched profile is served from the cache; default 60 s, at most one day. Profiles
    /// in use are refreshed in the background from ¾ of it on.
    pub cache_ttl: Duration,
    /// How long past its TTL a cached profile is still served while the platform API fails
    /// (then `{"id": N}`); default one hour, at most a week. Zero: degrade at once.
    pub cache_stale: Duration,
    /// How many profiles the cache holds, users and topics each; default 100 000.
    pub cache_capacity: u64,
}

impl Default for PlatformSettings {
    fn default() -> Self {
        Self {
            api_url: "http://localhost:3000/".to_owned(),
            user_agent: "Senna-Sockets-Server".to_owned(),
            timeout: Duration::from_secs(2),
            cache_ttl: Duration::from_secs(60),
            cache_stale: Duration::from_secs(60 * 60),
            cache_capacity: 100_000,
        }
    }
}

/// A [`Directory`] backed by the platform API, with a cache in front.
///
/// Only profiles the API returned are cached. Failures and ids the API did not return are not
/// cached at all: their `{"id": N}` is answered now, and the next lookup asks the API again, so a
/// user created a moment ago or an API back from an outage shows up without waiting for a TTL.
/// Concurrent lookups of the same id share one request; see [`crate::profile_cache`] for how
/// entries are refreshed and served through an outage.
#[derive(Debug, Clone)]
pub struct PlatformDirectory {
    users: ProfileCache<UserId>,
    topics: ProfileCache<TopicId>,
}

impl PlatformDirectory {
    /// Builds the directory: checks the settings and prepares the HTTP client and the caches.
    /// Makes no request. An `api_url` that is not an absolute http(s) URL, a User-Agent that
    /// cannot be a header, a zero timeout or a TTL over a day is an [`IdentityError`].
    pub fn new(settings: PlatformSettings) -> Result<Self, IdentityError> {
        let base = base_url(&settings.api_url)?;
        if settings.timeout.is_zero() {
            return Err(IdentityError::setting("platform.timeout_ms", "must be greater than zero"));
        }
        if settings.cache_ttl > MAX_CACHE_TTL {
            return Err(IdentityError::setting("platform.cache_ttl_seconds", "must be at most one day"));
        }
        if settings.cache_stale > MAX_CACHE_STALE {
            return Err(IdentityError::setting("platform.cache_stale_seconds", "must be at most one week"));
        }
        if reqwest::header::HeaderValue::from_str(&settings.user_agent).is_err() {
            return Err(IdentityError::setting("platform.user_agent", "must be printable ASCII text"));
        }
        let client = reqwest::Client::builder()
            .user_agent(settings.user_agent.as_str())
            .timeout(settings.timeout)
            .build()
            .map_err(|e| IdentityError::setting("platform.api_url", format!("cannot get an HTTP client: {e}")))?;
        Ok(Self {
            users: resource(&client, &base, USERS, USER_FIELDS, &settings)?,
            topics: resource(&client, &base, TOPICS, TOPIC_FIELDS, &settings)?,
        })
    }

    /// What the user and topic caches have done so far (also exported as metrics).
    pub fn stats(&self) -> (ProfileStats, ProfileStats) {
        (self.users.stats(), self.topics.stats())
    }
}

#[async_trait::async_trait]
impl Directory for PlatformDirectory {
    async fn users(&self, ids: &[UserId]) -> HashMap<UserId, Profile> {
        self.users.profiles(ids).await
    }

    async fn topics(&self, ids: &[TopicId]) -> HashMap<TopicId, Profile> {
        self.topics.profiles(ids).await
    }
}

/// The cache of one collection of the API (users or topics), asking `{base}{path}`.
fn resource<I: DirectoryId>(
    client: &reqwest::Client,
    base: &Url,
    path: &'static str,
    fields: &'static str,
    settings: &PlatformSettings,
) -> Result<ProfileCache<I>, IdentityError> {
    let url = base
        .join(path)
        .map_err(|e| IdentityError::setting("platform.api_url", format!("cannot be extended with {path}: {e}")))?;
    let client = client.clone();
    let fetch: Fetch<I> = Arc::new(move |ids: Vec<I>| {
        let (client, url) = (client.clone(), request_url(&url, fields, &ids));
        Box::pin(async move { fetch(&client, url).await })
    });
    Ok(ProfileCache::new(path, fetch, settings.cache_capacity, settings.cache_ttl, settings.cache_stale))
}

/// `{url}?fields=…&ids=1,2,3`, written by hand because the original's API expects literal
/// commas, which `Url::query_pairs_mut` would escape as `%2C`. Ids are digits and the fields
/// a constant, so nothing needs escaping.
fn request_url<I: DirectoryId>(url: &Url, fields: &str, ids: &[I]) -> Url {
    let ids: Vec<String> = ids.iter().map(|id| id.number().to_string()).collect();
    let mut url = url.clone();
    url.set_query(Some(&format!("fields={fields}&ids={}", ids.join(","))));
    url
}

/// Asks the API and reads `{"entries": [...]}` into profiles by id. Entries without a usable id
/// are skipped (their ids end up degraded). The error text never carries the URL, which may hold
/// credentials of the API.
async fn fetch(client: &reqwest::Client, url: Url) -> Fetched {
    let response = client.get(url).send().await.and_then(reqwest::Response::error_for_status).map_err(describe)?;
    let body: serde_json::Value = response.json().await.map_err(describe)?;
    let Some(serde_json::Value::Array(entries)) = body.get("entries") else {
        return Err("the answer has no \"entries\" list".to_owned());
    };
    Ok(entries
        .iter()
        .filter(|entry| entry.is_object())
        .filter_map(|entry| Some((entry_id(entry)?, Profile::new(entry))))
        .collect())
}

/// The error with its causes (reqwest's own text is only "error sending request"), minus the URL.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// The API's base URL, ending in `/` so that joining `v1/users` keeps any path it has.
fn base_url(api_url: &str) -> Result<Url, IdentityError> {
    let mut url = Url::parse(api_url.trim())
        .map_err(|e| IdentityError::setting("platform.api_url", format!("'{api_url}' is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(IdentityError::setting("platform.api_url", format!("'{api_url}' is not an http(s) URL")));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_url_keeps_its_path_with_or_without_a_trailing_slash() {
        for (given, users) in [
            ("http://localhost:3000/", "http://localhost:3000/v1/users"),
            ("http://localhost:3000", "http://localhost:3000/v1/users"),
            ("https://example.com/api", "https://example.com/api/v1/users"),
            ("https://example.com/api/", "https://example.com/api/v1/users"),
        ] {
            let base = base_url(given).expect("a valid URL");
            assert_eq!(base.join(USERS).expect("joins").as_str(), users, "{given}");
        }
    }

    #[test]
    fn requests_list_fields_and_ids_with_literal_commas() {
        let base = base_url(&PlatformSettings::default().api_url).expect("defaults are valid");
        let ids = [TopicId::new(4).expect("id"), TopicId::new(42).expect("id")];
        assert_eq!(
            request_url(&base.join(TOPICS).expect("joins"), TOPIC_FIELDS, &ids).as_str(),
            "http://localhost:3000/v1/topics?fields=id,title,status,cover_image_thumbnail&ids=4,42"
        );
    }

    #[test]
    fn unusable_settings_are_refused_by_name() {
        let cases = [
            PlatformSettings { api_url: "localhost:3000".to_owned(), ..PlatformSettings::default() },
            PlatformSettings { api_url: "not a url".to_owned(), ..PlatformSettings::default() },
            PlatformSettings { api_url: "ftp://example.com/".to_owned(), ..PlatformSettings::default() },
            PlatformSettings { user_agent: "bad\nagent".to_owned(), ..PlatformSettings::default() },
            PlatformSettings { timeout: Duration::ZERO, ..PlatformSettings::default() },
            PlatformSettings { cache_ttl: Duration::from_secs(366 * 24 * 3600), ..PlatformSettings::default() },
            PlatformSettings { cache_stale: Duration::from_secs(8 * 24 * 3600), ..PlatformSettings::default() },
        ];
        let names = [
            "platform.api_url",
            "platform.api_url",
            "platform.api_url",
            "platform.user_agent",
            "platform.timeout_ms",
            "platform.cache_ttl_seconds",
            "platform.cache_stale_seconds",
        ];
        for (settings, name) in cases.into_iter().zip(names) {
            let error = PlatformDirectory::new(settings.clone()).expect_err("must be refused").to_string();
            assert!(error.starts_with(name), "{settings:?}: {error}");
        }
    }
}
