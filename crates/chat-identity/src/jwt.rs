//! JWT verification: turns the token a client presents into the [`UserId`] it speaks for.
//!
//! The platform already issues these tokens (the original service checked them with Node's
//! `jsonwebtoken`), so the rules follow what those tokens look like: the algorithm is pinned by
//! configuration, `exp`/`nbf` are honoured when present but not required (many platform tokens
//! are just `{"user_id": 388636}`), and the user id may be a number or a numeric string. When topic
//! access control is configured, a claim lists the topics the user may use.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use chat_domain::{Caller, TopicGrant, TopicId, UserId};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};

use crate::IdentityError;

/// The algorithms [`JwtSettings::algorithm`] accepts, as configuration spells them.
const ALGORITHMS: &str = "HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA";

/// The largest leeway accepted: clocks that disagree by more than a day are a misconfiguration,
/// and a bound keeps the library's `now ± leeway` arithmetic far from overflow.
const MAX_LEEWAY_SECONDS: u64 = 24 * 60 * 60;

/// Typed JWT settings, built by the daemon from its configuration (libraries never read env vars).
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// The one algorithm tokens must be signed with: `HS256` (default), `HS384`, `HS512`,
    /// `RS256`/`RS384`/`RS512`, `PS256`/`PS384`/`PS512`, `ES256`, `ES384` or `EdDSA`.
    pub algorithm: String,
    /// The HMAC secret; required for the `HS*` algorithms, ignored by the others.
    pub secret: Option<SecretString>,
    /// The PEM public key (`-----BEGIN PUBLIC KEY-----`, or `RSA PUBLIC KEY` for RSA); required
    /// for the `RS*`, `PS*`, `ES*` and `EdDSA` algorithms, ignored by `HS*`.
    pub public_key_pem: Option<String>,
    /// The claim holding the user id; default `user_id`.
    pub user_claim: String,
    /// The claim listing the topics the user may read, post in and follow (an array of topic ids,
    /// or `"*"` for every topic); `None` (the default) leaves every topic open to every user.
    pub topics_claim: Option<String>,
    /// Clock-skew allowance on `exp` and `nbf`, in seconds; default 5, at most one day.
    pub leeway_seconds: u64,
    /// The claim naming the tenant (domain handle) a token was issued for; when set, a token
    /// verifies only for the tenant it names ([`TokenVerifier::verify_for`]). `None` (the
    /// default): a token is good for any tenant this verifier serves.
    pub tenant_claim: Option<String>,
}

impl Default for JwtSettings {
    fn default() -> Self {
        Self {
            algorithm: "HS256".to_owned(),
            secret: None,
            public_key_pem: None,
            user_claim: "user_id".to_owned(),
            topics_claim: None,
            leeway_seconds: 5,
            tenant_claim: None,
        }
    }
}

/// Why a token was refused.
///
/// The texts are those of Node's `jsonwebtoken`, which checked the platform's tokens in the
/// original service (its clients saw them), and never quote what the token contained, so they can
/// be logged. The checks run in that library's order, so a token with several faults gets the
/// same answer as there: its shape, then the signature's presence, the algorithm, the signature,
/// the time claims, then chatd's own claims.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JWT: not three dot-separated parts, or a header or payload that is not base64url JSON.
    #[error("jwt malformed")]
    Malformed,
    /// A JWT without its signature part (`header.payload.`), as an `alg: none` token is.
    #[error("jwt signature is required")]
    SignatureRequired,
    /// The header names another algorithm than the configured one (or none).
    #[error("invalid algorithm")]
    Algorithm,
    /// The signature does not verify with the configured secret or key.
    #[error("invalid signature")]
    Signature,
    /// `exp` has passed (beyond the leeway).
    #[error("jwt expired")]
    Expired,
    /// `nbf` has not come yet (beyond the leeway).
    #[error("jwt not active")]
    NotActive,
    /// A time claim that is not a number (`exp`, `nbf`).
    #[error("invalid {0} value")]
    BadClaim(String),
    /// The token is genuine but its user claim is missing, falsy, or not a positive integer
    /// (or a string of digits).
    #[error("Incorrect token - please try a different one")]
    NoUserId,
    /// Topic access control is configured and the token's topics claim is neither a list of topic
    /// ids nor `"*"`.
    #[error("the token's topics claim is not a list of topic ids")]
    BadTopics,
    /// A tenant claim is configured and the token names another tenant than the one it was
    /// presented to (or none).
    #[error("the token was not issued for this site")]
    OtherTenant,
}

/// Verifies tokens with the configured algorithm and key. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

/// Tokens verified at most, remembered; the table is emptied when it is full.
const VERIFIED_CAPACITY: usize = 10_000;

/// A token that verified: who it speaks for, until when it is current (epoch seconds), and the
/// tenant its tenant claim names (when one is configured).
type Verified = (Caller, Option<u64>, Option<Box<str>>);

struct Inner {
    /// Tokens that verified through [`TokenVerifier::verify_remembered`], each with its caller and
    /// the moment it stops being current (`exp` plus the leeway, in epoch seconds; none without
    /// `exp`). A REST client sends the same token on every request, and its signature check was a
    /// twentieth of a request's CPU: it is done once per token. Only the very same token text
    /// finds its entry.
    verified: Mutex<HashMap<Box<str>, Verified>>,
    algorithm: Algorithm,
    /// The algorithm as a token's header names it (`HS256`, `EdDSA`, …).
    algorithm_name: String,
    key: DecodingKey,
    validation: Validation,
    user_claim: String,
    topics_claim: Option<String>,
    tenant_claim: Option<String>,
}

impl fmt::Debug for TokenVerifier {
    // Hand-written so that no secret or key material can ever reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("algorithm", &self.inner.algorithm)
            .field("user_claim", &self.inner.user_claim)
            .field("topics_claim", &self.inner.topics_claim)
            .field("tenant_claim", &self.inner.tenant_claim)
            .field("leeway_seconds", &self.inner.validation.leeway)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// Builds a verifier, checking the settings: an unknown algorithm, a missing secret or key
    /// for the algorithm, a PEM that is not a public key of the algorithm's kind, an empty
    /// user claim or an excessive leeway is an [`IdentityError`] naming the setting.
    pub fn new(settings: &JwtSettings) -> Result<Self, IdentityError> {
        let algorithm = Algorithm::from_str(settings.algorithm.trim()).map_err(|_| {
            IdentityError::setting(
                "jwt.algorithm",
                format!("'{}' is not a supported algorithm (expected one of {ALGORITHMS})", settings.algorithm),
            )
        })?;
        let key = decoding_key(algorithm, settings)?;
        if settings.user_claim.is_empty() {
            return Err(IdentityError::setting("jwt.user_claim", "must not be empty"));
        }
        if settings.topics_claim.as_deref() == Some(settings.user_claim.as_str()) {
            return Err(IdentityError::setting("jwt.topics_claim", "must differ from jwt.user_claim"));
        }
        if let Some(tenant_claim) = &settings.tenant_claim
            && (tenant_claim.is_empty()
                || *tenant_claim == settings.user_claim
                || settings.topics_claim.as_ref() == Some(tenant_claim))
        {
            return Err(IdentityError::setting(
                "jwt.tenant_claim",
                "must be a claim of its own, other than jwt.user_claim and jwt.topics_claim",
            ));
        }
        if settings.leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(IdentityError::setting(
                "jwt.leeway_seconds",
                format!("must be at most {MAX_LEEWAY_SECONDS} (one day)"),
            ));
        }

        // `Validation::new` pins the header's `alg` to exactly this algorithm: a token naming any
        // other (or `none`, which the library cannot even parse) is refused before any key use.
        let mut validation = Validation::new(algorithm);
        // The platform's tokens may carry no `exp`; the library requires it by default.
        validation.required_spec_claims.clear();
        // Checked when present. `nbf` is off by default in the library.
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = settings.leeway_seconds;
        // The original checked no audience; with the default on, any token carrying `aud` would
        // be refused because no audience is configured.
        validation.validate_aud = false;

        let (user_claim, topics_claim) = (settings.user_claim.clone(), settings.topics_claim.clone());
        let tenant_claim = settings.tenant_claim.clone();
        let algorithm_name = format!("{algorithm:?}");
        let verified = Mutex::new(HashMap::new());
        Ok(Self {
            inner: Arc::new(Inner {
                verified,
                algorithm,
                algorithm_name,
                key,
                validation,
                user_claim,
                topics_claim,
                tenant_claim,
            }),
        })
    }

    /// Who this token speaks for — the user and the topics granted to them — if the token is
    /// genuine and current. With a tenant claim configured, use [`Self::verify_for`]: here every
    /// token is refused, since no tenant is named to compare it with.
    pub fn verify(&self, token: &str) -> Result<Caller, TokenError> {
        self.verify_for(token, None)
    }

    /// [`Self::verify`] for a token presented to `tenant` (a domain handle): with a tenant claim
    /// configured, the token must name that tenant in it.
    pub fn verify_for(&self, token: &str, tenant: Option<&str>) -> Result<Caller, TokenError> {
        let (caller, _, named) = self.check(token.trim())?;
        self.for_tenant(caller, named.as_deref(), tenant)
    }

    /// [`Self::verify_for`] for a token that comes again and again (a REST client sends its token
    /// with every request): the signature is checked the first time, and the token remembered
    /// until it expires. A connection that verifies its token once has no use for this (and
    /// would only make the table hold one entry per socket).
    pub fn verify_remembered(&self, token: &str, tenant: Option<&str>) -> Result<Caller, TokenError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
        self.verify_at(token.trim(), tenant, now)
    }

    /// The caller of a verified token presented to `tenant`, if the tenant claim (when one is
    /// configured) names that tenant.
    fn for_tenant(&self, caller: Caller, named: Option<&str>, tenant: Option<&str>) -> Result<Caller, TokenError> {
        match (&self.inner.tenant_claim, named, tenant) {
            (None, _, _) => Ok(caller),
            (Some(_), Some(named), Some(tenant)) if named == tenant => Ok(caller),
            (Some(_), _, _) => Err(TokenError::OtherTenant),
        }
    }

    /// [`Self::verify_remembered`] at `now` (epoch seconds) for a token that verified before; the
    /// signature is checked the first time (the library then reads the clock itself).
    fn verify_at(&self, token: &str, tenant: Option<&str>, now: u64) -> Result<Caller, TokenError> {
        let inner = &*self.inner;
        let remembered = inner.verified.lock().unwrap_or_else(PoisonError::into_inner).get(token).cloned();
        if let Some((caller, until, named)) = remembered {
            return match until {
                Some(until) if now > until => Err(TokenError::Expired),
                _ => self.for_tenant(caller, named.as_deref(), tenant),
            };
        }
        let (caller, until, named) = self.check(token)?;
        let mut verified = inner.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= VERIFIED_CAPACITY {
            verified.clear();
        }
        verified.insert(token.into(), (caller.clone(), until, named.clone()));
        drop(verified);
        self.for_tenant(caller, named.as_deref(), tenant)
    }

    /// The signature and claims check: the caller, and until when the token is current.
    fn check(&self, token: &str) -> Result<Verified, TokenError> {
        let inner = &*self.inner;
        let data =
            jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, &inner.key, &inner.validation)
                .map_err(|error| refusal(token, &inner.algorithm_name, error.kind()))?;
        let claims = data.claims;
        let user = claims
            .get(&inner.user_claim)
            .and_then(|claim| UserId::from_json(claim).ok())
            .ok_or(TokenError::NoUserId)?;
        let topics = match &inner.topics_claim {
            None => TopicGrant::All,
            Some(name) => topic_grant(claims.get(name))?,
        };
        // The library accepted `exp` as a number when present.
        let until = claims
            .get("exp")
            .and_then(serde_json::Value::as_f64)
            .map(|exp| (exp.max(0.0) as u64).saturating_add(inner.validation.leeway));
        let named = inner.tenant_claim.as_ref().and_then(|name| claims.get(name)?.as_str().map(Box::from));
        Ok((Caller::new(user, topics), until, named))
    }
}

/// The topics a token's claim grants: an array of topic ids (numbers or digit strings), or `"*"`
/// for every topic. A token without the claim is granted none.
fn topic_grant(claim: Option<&serde_json::Value>) -> Result<TopicGrant, TokenError> {
    match claim {
        None | Some(serde_json::Value::Null) => Ok(TopicGrant::only([])),
        Some(serde_json::Value::String(all)) if all == "*" => Ok(TopicGrant::All),
        Some(serde_json::Value::Array(ids)) => ids
            .iter()
            .map(|id| TopicId::from_json(id).map_err(|_| TokenError::BadTopics))
            .collect::<Result<Vec<_>, _>>()
            .map(TopicGrant::only),
        Some(_) => Err(TokenError::BadTopics),
    }
}

/// The key for `algorithm`, from the setting that family needs.
fn decoding_key(algorithm: Algorithm, settings: &JwtSettings) -> Result<DecodingKey, IdentityError> {
    if let Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 = algorithm {
        return match &settings.secret {
            Some(secret) if !secret.expose_secret().is_empty() => {
                Ok(DecodingKey::from_secret(secret.expose_secret().as_bytes()))
            }
            _ => Err(IdentityError::setting("jwt.secret", format!("is required for {algorithm:?}"))),
        };
    }

    const SETTING: &str = "jwt.public_key (or jwt.public_key_file)";
    let pem = match settings.public_key_pem.as_deref().map(str::trim) {
        Some(pem) if !pem.is_empty() => pem,
        _ => {
            return Err(IdentityError::setting(SETTING, format!("is required for {algorithm:?}")));
        }
    };
    // A private key pasted here would parse for RSA (the library takes its first bit string) and
    // then fail every token; say what is wrong instead, and keep private keys out of config.
    if pem.contains("PRIVATE KEY") {
        return Err(IdentityError::setting(SETTING, "holds a private key; give the public key instead"));
    }
    let unreadable =
        |kind: &str| IdentityError::setting(SETTING, format!("is not a readable {kind} public key in PEM form"));
    match algorithm {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| unreadable("RSA")),
        Algorithm::ES256 | Algorithm::ES384 => {
            let key = DecodingKey::from_ec_pem(pem.as_bytes()).map_err(|_| unreadable("EC"))?;
            // The key is the uncompressed curve point: 1 + 2 × 32 bytes on P-256, 1 + 2 × 48 on
            // P-384. A key of the other curve would refuse every token; catch it at start-up.
            let (curve, point_len) = if algorithm == Algorithm::ES256 { ("P-256", 65) } else { ("P-384", 97) };
            match key.try_get_as_bytes() {
                Ok(point) if point.len() == point_len => Ok(key),
                _ => Err(IdentityError::setting(SETTING, format!("is not a {curve} key, as {algorithm:?} needs"))),
            }
        }
        Algorithm::EdDSA => DecodingKey::from_ed_pem(pem.as_bytes()).map_err(|_| unreadable("Ed25519")),
        // The HMAC algorithms returned above; anything newer is refused rather than guessed at.
        _ => Err(IdentityError::setting(
            "jwt.algorithm",
            format!("'{algorithm:?}' is not supported (expected one of {ALGORITHMS})"),
        )),
    }
}

/// Why `token` was refused, in Node's `jsonwebtoken` terms, given the error the library gave.
///
/// Only failures come here, so the common case pays for no second look at the token. The library
/// checks the signature before the header's algorithm can even be named (it cannot parse
/// `alg: none`) and reads no empty signature as missing; the shape, the signature's presence and
/// the algorithm are therefore looked at here first, in the order the original's library did.
fn refusal(token: &str, algorithm: &str, kind: &ErrorKind) -> TokenError {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return TokenError::Malformed;
    };
    let (Some(header), Some(_)) = (json_object(header), json_object(payload)) else {
        return TokenError::Malformed;
    };
    if signature.is_empty() {
        return TokenError::SignatureRequired;
    }
    if header.get("alg").and_then(serde_json::Value::as_str) != Some(algorithm) {
        return TokenError::Algorithm;
    }
    match kind {
        // The header and payload decoded above, so what fails to decode now is the signature.
        ErrorKind::InvalidSignature | ErrorKind::Base64(_) | ErrorKind::Provider(_) => TokenError::Signature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotActive,
        ErrorKind::InvalidClaimFormat(claim) => TokenError::BadClaim(claim.clone()),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => TokenError::Algorithm,
        _ => TokenError::Malformed,
    }
}

/// One part of a token, base64url (padded or not) over a JSON object.
fn json_object(part: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    serde_json::from_slice(&LENIENT.decode(part).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        let settings = JwtSettings { secret: Some("hunter2-very-secret".into()), ..JwtSettings::default() };
        let verifier = TokenVerifier::new(&settings).expect("valid settings");
        let shown = format!("{verifier:?} {settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("HS256"), "{shown}");
    }

    #[test]
    fn a_remembered_token_still_expires_and_only_the_same_text_is_remembered() {
        let settings = JwtSettings { secret: Some("remembered-secret".into()), ..JwtSettings::default() };
        let verifier = TokenVerifier::new(&settings).expect("valid settings");
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
        let claims = serde_json::json!({"user_id": 7, "exp": now + 100});
        let key = jsonwebtoken::EncodingKey::from_secret(b"remembered-secret");
        let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("signed");
        let seven = Caller::user_with_every_topic(UserId::new(7).expect("id"));

        assert_eq!(verifier.verify_remembered(&token, None), Ok(seven.clone()));
        assert_eq!(verifier.verify_at(&token, None, now + 100 + settings.leeway_seconds), Ok(seven));
        assert_eq!(verifier.verify_at(&token, None, now + 101 + settings.leeway_seconds), Err(TokenError::Expired));

        // The same claims under another signature are checked, not taken from the remembered one.
        let (signed, _) = token.rsplit_once('.').expect("three parts");
        assert_eq!(verifier.verify_remembered(&format!("{signed}.c2lnbmF0dXJl"), None), Err(TokenError::Signature));
    }

    #[test]
    fn a_tenant_claim_ties_a_token_to_the_tenant_it_names() {
        let settings = JwtSettings {
            secret: Some("shared-secret".into()),
            tenant_claim: Some("site".into()),
            ..JwtSettings::default()
        };
        let verifier = TokenVerifier::new(&settings).expect("valid settings");
        let key = jsonwebtoken::EncodingKey::from_secret(b"shared-secret");
        let sign = |claims: serde_json::Value| {
            jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("signed")
        };
        let seven = Caller::user_with_every_topic(UserId::new(7).expect("id"));
        let for_alpha = sign(serde_json::json!({"user_id": 7, "site": "alpha"}));
        assert_eq!(verifier.verify_for(&for_alpha, Some("alpha")), Ok(seven.clone()));
        assert_eq!(verifier.verify_for(&for_alpha, Some("beta")), Err(TokenError::OtherTenant));
        // Remembered, it is still checked against the tenant it is presented to.
        assert_eq!(verifier.verify_remembered(&for_alpha, Some("alpha")), Ok(seven));
        assert_eq!(verifier.verify_remembered(&for_alpha, Some("beta")), Err(TokenError::OtherTenant));
        // No tenant to compare with, or no claim in the token: refused.
        assert_eq!(verifier.verify(&for_alpha), Err(TokenError::OtherTenant));
        let unnamed = sign(serde_json::json!({"user_id": 7}));
        assert_eq!(verifier.verify_for(&unnamed, Some("alpha")), Err(TokenError::OtherTenant));
        // The claim must be one of its own.
        let clash = JwtSettings { tenant_claim: Some("user_id".into()), ..settings };
        assert!(TokenVerifier::new(&clash).is_err());
    }

    #[test]
    fn a_topics_claim_is_a_list_of_ids_or_a_star() {
        use serde_json::json;
        let topic = |n| TopicId::new(n).expect("valid id");
        assert_eq!(topic_grant(Some(&json!([42, "7", 42]))), Ok(TopicGrant::only([topic(7), topic(42)])));
        assert_eq!(topic_grant(Some(&json!("*"))), Ok(TopicGrant::All));
        assert_eq!(topic_grant(None), Ok(TopicGrant::only([])));
        assert_eq!(topic_grant(Some(&json!(null))), Ok(TopicGrant::only([])));
        for bad in [json!(42), json!("42"), json!({"42": true}), json!([0]), json!(["x"]), json!([[1]]), json!(true)] {
            assert_eq!(topic_grant(Some(&bad)), Err(TokenError::BadTopics), "{bad}");
        }
    }

    #[test]
    fn a_refusal_looks_at_shape_signature_and_algorithm_before_the_library_error() {
        // `{"alg":"HS256"}` and `{"user_id":7}`, base64url.
        let (header, payload) = ("eyJhbGciOiJIUzI1NiJ9", "eyJ1c2VyX2lkIjo3fQ");
        let refused = |token: &str, kind: ErrorKind| refusal(token, "HS256", &kind);
        assert_eq!(refused("a.b", ErrorKind::InvalidToken), TokenError::Malformed);
        assert_eq!(refused(&format!("{header}.{payload}.c.d"), ErrorKind::InvalidToken), TokenError::Malformed);
        assert_eq!(refused(&format!("{header}.!!.c"), ErrorKind::InvalidSignature), TokenError::Malformed);
        assert_eq!(
            refused(&format!("{header}.{payload}."), ErrorKind::InvalidSignature),
            TokenError::SignatureRequired
        );
        // `{"alg":"none"}`: the library cannot even parse it; it is an algorithm that is not allowed.
        let none = "eyJhbGciOiJub25lIn0";
        assert_eq!(refused(&format!("{none}.{payload}.c2ln"), ErrorKind::InvalidToken), TokenError::Algorithm);
        let token = format!("{header}.{payload}.c2ln");
        assert_eq!(refused(&token, ErrorKind::InvalidSignature), TokenError::Signature);
        assert_eq!(refused(&token, ErrorKind::ExpiredSignature), TokenError::Expired);
        assert_eq!(refused(&token, ErrorKind::ImmatureSignature), TokenError::NotActive);
        assert_eq!(refused(&token, ErrorKind::InvalidClaimFormat("exp".into())), TokenError::BadClaim("exp".into()));
        assert_eq!(TokenError::BadClaim("exp".into()).to_string(), "invalid exp value");
    }
}
