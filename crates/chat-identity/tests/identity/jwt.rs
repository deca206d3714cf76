//! Token verification: what is accepted, what is refused, and how settings are checked.

use chat_domain::{Caller, ChatTarget, DomainError, TopicGrant, TopicId, UserId};
use chat_identity::{IdentityError, JwtSettings, TokenError, TokenVerifier};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use serde_json::{Value, json};

const SECRET: &str = "test-secret-with-enough-length-0123456789";

const RSA_PRIVATE: &str = include_str!("../keys/rsa-private.pem");
const RSA_PUBLIC: &str = include_str!("../keys/rsa-public.pem");
const EC_PRIVATE: &str = include_str!("../keys/ec-private.pem");
const EC_PUBLIC: &str = include_str!("../keys/ec-public.pem");
const ED_PRIVATE: &str = include_str!("../keys/ed-private.pem");
const ED_PUBLIC: &str = include_str!("../keys/ed-public.pem");

fn hs_settings(algorithm: &str) -> JwtSettings {
    JwtSettings { algorithm: algorithm.to_owned(), secret: Some(SECRET.into()), ..JwtSettings::default() }
}

fn pem_settings(algorithm: &str, public_key_pem: &str) -> JwtSettings {
    JwtSettings {
        algorithm: algorithm.to_owned(),
        public_key_pem: Some(public_key_pem.to_owned()),
        ..JwtSettings::default()
    }
}

fn verifier(settings: &JwtSettings) -> TokenVerifier {
    TokenVerifier::new(settings).expect("valid settings")
}

fn hs_token(algorithm: Algorithm, secret: &str, claims: &Value) -> String {
    encode(&Header::new(algorithm), claims, &EncodingKey::from_secret(secret.as_bytes())).expect("token encodes")
}

fn hs256(claims: &Value) -> String {
    hs_token(Algorithm::HS256, SECRET, claims)
}

/// User `n`, granted every topic (no topic access control configured).
fn user(n: u64) -> Caller {
    Caller::user_with_every_topic(UserId::new(n).expect("a valid id"))
}

fn base64url(bytes: &[u8]) -> String {
    // Hand-rolled so the test does not depend on a base64 crate: unpadded RFC 4648 §5.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[test]
fn a_numeric_and_a_string_user_id_are_the_same_user() {
    let verifier = verifier(&hs_settings("HS256"));
    assert_eq!(verifier.verify(&hs256(&json!({"user_id": 388636}))), Ok(user(388636)));
    assert_eq!(verifier.verify(&hs256(&json!({"user_id": "388636"}))), Ok(user(388636)));
}

#[test]
fn exp_and_nbf_are_optional_but_honoured_when_present() {
    let verifier = verifier(&hs_settings("HS256"));
    let now = get_current_timestamp();
    // The platform's existing tokens: no exp at all.
    assert_eq!(verifier.verify(&hs256(&json!({"user_id": 7}))), Ok(user(7)));
    assert_eq!(verifier.verify(&hs256(&json!({"user_id": 7, "exp": now + 600, "nbf": now - 600}))), Ok(user(7)));
    // Within the 5 s leeway on either side.
    assert_eq!(verifier.verify(&hs256(&json!({"user_id": 7, "exp": now - 2, "nbf": now + 2}))), Ok(user(7)));

    assert_eq!(verifier.verify(&hs256(&json!({"user_id": 7, "exp": now - 60}))), Err(TokenError::Expired));
    assert_eq!(verifier.verify(&hs256(&json!({"user_id": 7, "nbf": now + 60}))), Err(TokenError::NotActive));
    assert_eq!(
        verifier.verify(&hs256(&json!({"user_id": 7, "exp": "tomorrow"}))),
        Err(TokenError::BadClaim("exp".to_owned()))
    );
    assert_eq!(TokenError::Expired.to_string(), "jwt expired");
    assert_eq!(TokenError::NotActive.to_string(), "jwt not active");
}

#[test]
fn the_leeway_is_configurable() {
    let now = get_current_timestamp();
    let token = hs256(&json!({"user_id": 7, "exp": now - 60}));
    let strict = verifier(&JwtSettings { leeway_seconds: 0, ..hs_settings("HS256") });
    let lenient = verifier(&JwtSettings { leeway_seconds: 120, ..hs_settings("HS256") });
    assert_eq!(strict.verify(&token), Err(TokenError::Expired));
    assert_eq!(lenient.verify(&token), Ok(user(7)));
}

#[test]
fn an_audience_or_issuer_is_not_checked() {
    let verifier = verifier(&hs_settings("HS256"));
    let token = hs256(&json!({"user_id": 7, "aud": "somebody-else", "iss": "the-platform"}));
    assert_eq!(verifier.verify(&token), Ok(user(7)));
}

#[test]
fn a_wrong_secret_or_a_tampered_token_is_refused() {
    let verifier = verifier(&hs_settings("HS256"));
    assert_eq!(
        verifier.verify(&hs_token(Algorithm::HS256, "another-secret", &json!({"user_id": 7}))),
        Err(TokenError::Signature)
    );
    assert_eq!(TokenError::Signature.to_string(), "invalid signature");

    // Swap in a payload naming another user, keeping the original signature.
    let genuine = hs256(&json!({"user_id": 7}));
    let parts: Vec<&str> = genuine.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], base64url(br#"{"user_id":1}"#), parts[2]);
    assert_eq!(verifier.verify(&forged), Err(TokenError::Signature));
}

#[test]
fn malformed_tokens_are_refused() {
    let verifier = verifier(&hs_settings("HS256"));
    for bad in ["", "abc", "a.b", "a.b.c", "a.b.c.d", "....", "eyJhbGciOiJIUzI1NiJ9..", "Bearer x.y.z"] {
        assert_eq!(verifier.verify(bad), Err(TokenError::Malformed), "{bad:?} must be refused");
    }
    assert_eq!(TokenError::Malformed.to_string(), "jwt malformed");
    // Genuine signature over claims that are not an object.
    let header = base64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = base64url(b"[1,2]");
    let signing_key = EncodingKey::from_secret(SECRET.as_bytes());
    let signature =
        jsonwebtoken::crypto::sign(format!("{header}.{payload}").as_bytes(), &signing_key, Algorithm::HS256)
            .expect("signs");
    assert_eq!(verifier.verify(&format!("{header}.{payload}.{signature}")), Err(TokenError::Malformed));
}

#[test]
fn the_algorithm_is_pinned_by_configuration() {
    let verifier = verifier(&hs_settings("HS256"));
    for other in [Algorithm::HS384, Algorithm::HS512] {
        assert_eq!(
            verifier.verify(&hs_token(other, SECRET, &json!({"user_id": 7}))),
            Err(TokenError::Algorithm),
            "{other:?}"
        );
    }
    // And the other way round: HS384 pinned refuses HS256 but takes HS384.
    let hs384 = self::verifier(&hs_settings("HS384"));
    assert_eq!(hs384.verify(&hs256(&json!({"user_id": 7}))), Err(TokenError::Algorithm));
    assert_eq!(TokenError::Algorithm.to_string(), "invalid algorithm");
    assert_eq!(hs384.verify(&hs_token(Algorithm::HS384, SECRET, &json!({"user_id": 7}))), Ok(user(7)));
    let hs512 = self::verifier(&hs_settings("HS512"));
    assert_eq!(hs512.verify(&hs_token(Algorithm::HS512, SECRET, &json!({"user_id": 7}))), Ok(user(7)));
}

#[test]
fn an_unsigned_alg_none_token_is_refused() {
    let verifier = verifier(&hs_settings("HS256"));
    let payload = base64url(br#"{"user_id":7}"#);
    for header in [r#"{"alg":"none","typ":"JWT"}"#, r#"{"alg":"None","typ":"JWT"}"#, r#"{"typ":"JWT"}"#] {
        // Without a signature part, as such tokens come: the signature is required first.
        let unsigned = format!("{}.{payload}.", base64url(header.as_bytes()));
        assert_eq!(verifier.verify(&unsigned), Err(TokenError::SignatureRequired), "{header}");
        // With one, the algorithm is not the configured one.
        let signed = format!("{}.{payload}.c2lnbmF0dXJl", base64url(header.as_bytes()));
        assert_eq!(verifier.verify(&signed), Err(TokenError::Algorithm), "{header}");
    }
    assert_eq!(TokenError::SignatureRequired.to_string(), "jwt signature is required");
}

#[test]
fn a_missing_or_unusable_user_id_is_no_user_id() {
    let verifier = verifier(&hs_settings("HS256"));
    for claims in [
        json!({}),
        json!({"sub": "7"}),
        json!({"user_id": 0}),
        json!({"user_id": "0"}),
        json!({"user_id": -7}),
        json!({"user_id": 7.5}),
        json!({"user_id": ""}),
        json!({"user_id": "abc"}),
        json!({"user_id": null}),
        json!({"user_id": false}),
        json!({"user_id": true}),
        json!({"user_id": [7]}),
        json!({"user_id": {"id": 7}}),
    ] {
        assert_eq!(verifier.verify(&hs256(&claims)), Err(TokenError::NoUserId), "{claims}");
    }
}

#[test]
fn with_a_topics_claim_configured_a_token_grants_exactly_the_topics_it_lists() {
    let verifier = verifier(&JwtSettings { topics_claim: Some("topics".to_owned()), ..hs_settings("HS256") });
    let topic = |n| ChatTarget::Topic(TopicId::new(n).expect("a valid id"));

    let listed = verifier.verify(&hs256(&json!({"user_id": 7, "topics": [42, "43"]}))).expect("a valid token");
    assert_eq!(listed.user(), UserId::new(7).expect("a valid id"));
    assert_eq!(listed.check(topic(42)), Ok(()));
    assert_eq!(listed.check(topic(43)), Ok(()));
    assert!(matches!(listed.check(topic(44)), Err(DomainError::TopicForbidden(_))));

    let unlisted = verifier.verify(&hs256(&json!({"user_id": 7}))).expect("a valid token");
    assert_eq!(unlisted.topics(), &TopicGrant::only([]));
    let everything = verifier.verify(&hs256(&json!({"user_id": 7, "topics": "*"}))).expect("a valid token");
    assert_eq!(everything.topics(), &TopicGrant::All);

    for claims in [json!({"user_id": 7, "topics": 42}), json!({"user_id": 7, "topics": [0]})] {
        assert_eq!(verifier.verify(&hs256(&claims)), Err(TokenError::BadTopics), "{claims}");
    }
    // Without the setting the claim means nothing: every topic is open.
    let open = hs_settings("HS256");
    assert_eq!(self::verifier(&open).verify(&hs256(&json!({"user_id": 7, "topics": 42}))), Ok(user(7)));
}

#[test]
fn the_topics_claim_must_not_be_the_user_claim() {
    let settings = JwtSettings { topics_claim: Some("user_id".to_owned()), ..hs_settings("HS256") };
    assert!(matches!(
        TokenVerifier::new(&settings),
        Err(IdentityError::InvalidSetting { setting: "jwt.topics_claim", .. })
    ));
}

#[test]
fn the_user_claim_name_is_configurable() {
    let verifier = verifier(&JwtSettings { user_claim: "uid".to_owned(), ..hs_settings("HS256") });
    assert_eq!(verifier.verify(&hs256(&json!({"uid": "42"}))), Ok(user(42)));
    assert_eq!(verifier.verify(&hs256(&json!({"user_id": 42}))), Err(TokenError::NoUserId));
}

#[test]
fn public_key_algorithms_verify_with_the_pem_key() {
    let claims = json!({"user_id": 99, "exp": get_current_timestamp() + 600});
    let cases = [
        ("RS256", Algorithm::RS256, EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()), RSA_PUBLIC),
        ("RS512", Algorithm::RS512, EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()), RSA_PUBLIC),
        ("PS256", Algorithm::PS256, EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()), RSA_PUBLIC),
        ("ES256", Algorithm::ES256, EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()), EC_PUBLIC),
        ("EdDSA", Algorithm::EdDSA, EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()), ED_PUBLIC),
    ];
    for (name, algorithm, signing_key, public_pem) in cases {
        let signing_key = signing_key.expect("test private key parses");
        let verifier = verifier(&pem_settings(name, public_pem));
        let token = encode(&Header::new(algorithm), &claims, &signing_key).expect("token encodes");
        assert_eq!(verifier.verify(&token), Ok(user(99)), "{name}");

        // A damaged signature fails.
        let mut tampered = token.clone();
        tampered.truncate(token.len() - 4);
        tampered.push_str("AAAA");
        assert_eq!(verifier.verify(&tampered), Err(TokenError::Signature), "{name}");

        // An HMAC token is refused, even one keyed with the public key itself (the classic
        // confusion attack on libraries that trust the token's alg).
        assert_eq!(
            verifier.verify(&hs_token(Algorithm::HS256, public_pem, &claims)),
            Err(TokenError::Algorithm),
            "{name}"
        );
    }
}

#[test]
fn a_token_of_the_same_family_but_another_algorithm_is_refused() {
    let verifier = verifier(&pem_settings("RS256", RSA_PUBLIC));
    let signing_key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("test private key parses");
    let token = encode(&Header::new(Algorithm::PS256), &json!({"user_id": 1}), &signing_key).expect("token encodes");
    assert_eq!(verifier.verify(&token), Err(TokenError::Algorithm));
}

fn settings_error(settings: &JwtSettings) -> String {
    match TokenVerifier::new(settings) {
        Ok(verifier) => panic!("{settings:?} must be refused, got {verifier:?}"),
        Err(error @ IdentityError::InvalidSetting { .. }) => error.to_string(),
        Err(other) => panic!("unexpected error kind: {other:?}"),
    }
}

#[test]
fn unusable_settings_are_refused_with_the_setting_named() {
    assert_eq!(settings_error(&JwtSettings::default()), "jwt.secret is required for HS256");
    assert_eq!(
        settings_error(&JwtSettings { secret: Some("".into()), ..JwtSettings::default() }),
        "jwt.secret is required for HS256"
    );
    assert_eq!(
        settings_error(&JwtSettings { algorithm: "HS512".to_owned(), ..JwtSettings::default() }),
        "jwt.secret is required for HS512"
    );
    assert_eq!(
        settings_error(&JwtSettings {
            algorithm: "RS256".to_owned(),
            secret: Some(SECRET.into()),
            ..JwtSettings::default()
        }),
        "jwt.public_key (or jwt.public_key_file) is required for RS256"
    );
    for unknown in ["none", "hs256", "HS1024", ""] {
        let message = settings_error(&hs_settings(unknown));
        assert!(message.starts_with("jwt.algorithm "), "{message}");
        assert!(message.contains("HS256"), "lists the choices: {message}");
    }
    let garbage =
        settings_error(&pem_settings("RS256", "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----"));
    assert!(garbage.starts_with("jwt.public_key (or jwt.public_key_file) "), "{garbage}");
    // A key of the wrong kind or curve for the algorithm.
    for (algorithm, pem) in [("RS256", EC_PUBLIC), ("ES256", RSA_PUBLIC), ("ES384", EC_PUBLIC), ("EdDSA", EC_PUBLIC)] {
        let message = settings_error(&pem_settings(algorithm, pem));
        assert!(message.starts_with("jwt.public_key (or jwt.public_key_file) "), "{algorithm}: {message}");
    }
    assert_eq!(
        settings_error(&pem_settings("RS256", RSA_PRIVATE)),
        "jwt.public_key (or jwt.public_key_file) holds a private key; give the public key instead"
    );
    assert!(
        settings_error(&JwtSettings { user_claim: String::new(), ..hs_settings("HS256") })
            .starts_with("jwt.user_claim ")
    );
    assert!(
        settings_error(&JwtSettings { leeway_seconds: u64::MAX, ..hs_settings("HS256") })
            .starts_with("jwt.leeway_seconds ")
    );
}

#[test]
fn verifiers_are_cheap_clones_that_agree() {
    let original = verifier(&hs_settings("HS256"));
    let copy = original.clone();
    let token = hs256(&json!({"user_id": 5}));
    assert_eq!(original.verify(&token), copy.verify(&token));
    assert!(!format!("{copy:?}").contains(SECRET));
}
