//! The platform-API directory: profiles fetched from the platform's `/v1/users` and `/v1/topics`
//! (the original service's "model"), batched, cached and bounded in time.
//!
//! The original asked the API once per lookup, with duplicate ids, a 5 s timeout and no cache,
//! and turned any API error into a 500. Here a lookup asks only for the ids not in the cache,
//! once each, and a slow or failing API degrades profiles to `{"id": N}` instead of failing chat.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chat_domain::{TopicId, UserId};
use moka::future::Cache;
use reqwest::Url;
use tokio::task::JoinSet;

use crate::directory::{DirectoryId, degraded_profile, entry_id};
use crate::{Directory, IdentityError, Profile};

/// Ids per request: keeps URLs well under common server limits (about 8 KB) however many
/// profiles one page of chat needs.
const MAX_IDS_PER_REQUEST: usize = 100;

/// The longest cache TTL accepted. Profiles change (renames, new pictures), and a day is
/// already far longer than any sensible setting.
const MAX_CACHE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

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
    /// How long a fetched profile is served from the cache; default 60 s, at most one day.
    pub cache_ttl: Duration,
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
            cache_capacity: 100_000,
        }
    }
}

/// A [`Directory`] backed by the platform API, with a cache in front.
///
/// Only profiles the API returned are cached. Failures and ids the API did not return are not
/// cached at all: their `{"id": N}` is answered now, and the next lookup asks the API again, so a
/// user created a moment ago or an API back from an outage shows up without waiting for a TTL.
/// Concurrent lookups of the same uncached id may each ask the API; that costs a request, never
/// a wrong answer.
#[derive(Debug, Clone)]
pub struct PlatformDirectory {
    client: reqwest::Client,
    users: Resource<UserId>,
    topics: Resource<TopicId>,
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
        if reqwest::header::HeaderValue::from_str(&settings.user_agent).is_err() {
            return Err(IdentityError::setting("platform.user_agent", "must be printable ASCII text"));
        }
        let client = reqwest::Client::builder()
            .user_agent(settings.user_agent.as_str())
            .timeout(settings.timeout)
            .build()
            .map_err(|e| IdentityError::setting("platform.api_url", format!("cannot get an HTTP client: {e}")))?;
        Ok(Self {
            users: Resource::new(&base, "v1/users", "id,username,role,picture_url,profile_url", &settings)?,
            topics: Resource::new(&base, "v1/topics", "id,title,status,cover_image_thumbnail", &settings)?,
            client,
        })
    }
}

#[async_trait::async_trait]
impl Directory for PlatformDirectory {
    async fn users(&self, ids: &[UserId]) -> HashMap<UserId, Profile> {
        self.users.profiles(&self.client, ids).await
    }

    async fn topics(&self, ids: &[TopicId]) -> HashMap<TopicId, Profile> {
        self.topics.profiles(&self.client, ids).await
    }
}

/// One collection of the API (users or topics) and its cache.
#[derive(Clone)]
struct Resource<I: DirectoryId> {
    /// `v1/users` or `v1/topics`, for log lines.
    kind: &'static str,
    url: Url,
    fields: &'static str,
    cache: Cache<I, Profile>,
}

impl<I: DirectoryId> std::fmt::Debug for Resource<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resource")
            .field("url", &self.url.as_str())
            .field("fields", &self.fields)
            .field("cached", &self.cache.entry_count())
            .finish()
    }
}

impl<I: DirectoryId> Resource<I> {
    fn new(
        base: &Url,
        path: &'static str,
        fields: &'static str,
        settings: &PlatformSettings,
    ) -> Result<Self, IdentityError> {
        let url = base
            .join(path)
            .map_err(|e| IdentityError::setting("platform.api_url", format!("cannot be extended with {path}: {e}")))?;
        Ok(Self {
            kind: path,
            url,
            fields,
            cache: Cache::builder().max_capacity(settings.cache_capacity).time_to_live(settings.cache_ttl).build(),
        })
    }

    async fn profiles(&self, client: &reqwest::Client, ids: &[I]) -> HashMap<I, Profile> {
        // Sorted and de-duplicated: one question per id, in a stable order.
        let wanted: BTreeSet<I> = ids.iter().copied().collect();
        let mut answer = HashMap::with_capacity(wanted.len());
        let mut missing = Vec::new();
        for id in wanted {
            match self.cache.get(&id).await {
                Some(profile) => {
                    answer.insert(id, profile);
                }
                None => missing.push(id),
            }
        }
        let hits = answer.len() as u64;
        metrics::counter!("chatd_profile_cache_hits_total").increment(hits);
        metrics::counter!("chatd_profile_cache_misses_total").increment(missing.len() as u64);

        // Chunks go out at once, so a lookup takes at most one timeout, not one per chunk.
        // The JoinSet aborts them if the caller gives up on this lookup.
        let mut requests = JoinSet::new();
        for chunk in missing.chunks(MAX_IDS_PER_REQUEST) {
            let (client, url, kind) = (client.clone(), self.request_url(chunk), self.kind);
            let chunk = chunk.to_vec();
            requests.spawn(async move {
                let fetched = fetch(&client, url).await.map_err(|problem| {
                    tracing::warn!(api = kind, ids = chunk.len(), %problem, "platform API lookup failed; serving degraded profiles");
                });
                (chunk, fetched)
            });
        }
        while let Some(joined) = requests.join_next().await {
            // A request task only ends early by panicking inside reqwest; its ids are still
            // answered below, degraded.
            let Ok((chunk, fetched)) = joined else {
                continue;
            };
            let mut fetched = fetched.unwrap_or_default();
            for id in chunk {
                if let Some(profile) = fetched.remove(&id.number()) {
                    self.cache.insert(id, profile.clone()).await;
                    answer.insert(id, profile);
                }
            }
        }

        for id in missing {
            answer.entry(id).or_insert_with(|| degraded_profile(id.number()));
        }
        answer
    }

    /// `{url}?fields=…&ids=1,2,3`, written by hand because the original's API expects literal
    /// commas, which `Url::query_pairs_mut` would escape as `%2C`. Ids are digits and the fields
    /// a constant, so nothing needs escaping.
    fn request_url(&self, ids: &[I]) -> Url {
        let ids: Vec<String> = ids.iter().map(|id| id.number().to_string()).collect();
        let mut url = self.url.clone();
        url.set_query(Some(&format!("fields={}&ids={}", self.fields, ids.join(","))));
        url
    }
}

/// Asks the API and reads `{"entries": [...]}` into profiles by id. Entries without a usable id
/// are skipped (their ids end up degraded). The error text never carries the URL, which may hold
/// credentials of the API.
async fn fetch(client: &reqwest::Client, url: Url) -> Result<HashMap<u64, Profile>, String> {
    let response = client.get(url).send().await.and_then(reqwest::Response::error_for_status).map_err(describe)?;
    let body: serde_json::Value = response.json().await.map_err(describe)?;
    let Some(serde_json::Value::Array(entries)) = body.get("entries") else {
        return Err("the answer has no \"entries\" list".to_owned());
    };
    Ok(entries
        .iter()
        .filter(|entry| entry.is_object())
        .filter_map(|entry| Some((entry_id(entry)?, entry.clone())))
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
            let directory =
                PlatformDirectory::new(PlatformSettings { api_url: given.to_owned(), ..PlatformSettings::default() })
                    .expect("a valid URL");
            assert_eq!(directory.users.url.as_str(), users, "{given}");
        }
    }

    #[test]
    fn requests_list_fields_and_ids_with_literal_commas() {
        let directory = PlatformDirectory::new(PlatformSettings::default()).expect("defaults are valid");
        let ids = [TopicId::new(4).expect("id"), TopicId::new(42).expect("id")];
        assert_eq!(
            directory.topics.request_url(&ids).as_str(),
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
        ];
        let names = [
            "platform.api_url",
            "platform.api_url",
            "platform.api_url",
            "platform.user_agent",
            "platform.timeout_ms",
            "platform.cache_ttl_seconds",
        ];
        for (settings, name) in cases.into_iter().zip(names) {
            let error = PlatformDirectory::new(settings.clone()).expect_err("must be refused").to_string();
            assert!(error.starts_with(name), "{settings:?}: {error}");
        }
    }
}
