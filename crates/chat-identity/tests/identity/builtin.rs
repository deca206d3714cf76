//! The built-in directory: default profiles, profiles from a file, and bad files.

use std::collections::HashMap;
use std::io::Write;

use chat_domain::{TopicId, UserId};
use chat_identity::{BuiltinDirectory, Directory, IdentityError, Profile};
use serde_json::{Value, json};

fn user(id: u64) -> UserId {
    UserId::new(id).expect("valid id")
}

fn topic(id: u64) -> TopicId {
    TopicId::new(id).expect("valid id")
}

fn file_with(contents: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(contents.as_bytes()).expect("written");
    file
}

/// The profiles of an answer as JSON values, to compare with `json!`.
fn values<I: std::hash::Hash + Eq>(answer: HashMap<I, Profile>) -> HashMap<I, Value> {
    answer.into_iter().map(|(id, profile)| (id, profile.to_value())).collect()
}

#[tokio::test]
async fn without_a_file_every_profile_is_a_default_one() {
    let directory = BuiltinDirectory::new();
    assert_eq!(
        values(directory.users(&[user(1), user(388636), user(1)]).await),
        HashMap::from([
            (user(1), json!({"id": 1, "username": "user-1"})),
            (user(388636), json!({"id": 388636, "username": "user-388636"})),
        ])
    );
    assert_eq!(
        values(directory.topics(&[topic(42)]).await),
        HashMap::from([(topic(42), json!({"id": 42, "title": "topic-42"}))])
    );
    assert!(BuiltinDirectory::default().users(&[]).await.is_empty());
}

#[tokio::test]
async fn listed_profiles_come_back_as_written_and_others_get_defaults() {
    let alice = json!({"id": 1, "username": "alice", "role": {"id": 1, "handle": "admin", "value": "Admin"}});
    let bob = json!({"id": "2", "username": "bob"});
    let lounge = json!({"id": 42, "title": "Lounge", "status": "open"});
    let file = file_with(&json!({"users": [alice, bob], "topics": [lounge]}).to_string());
    let directory = BuiltinDirectory::from_json_file(file.path()).expect("a valid file");

    assert_eq!(
        values(directory.users(&[user(1), user(2), user(3)]).await),
        HashMap::from([(user(1), alice), (user(2), bob), (user(3), json!({"id": 3, "username": "user-3"})),])
    );
    assert_eq!(
        values(directory.topics(&[topic(42), topic(1)]).await),
        HashMap::from([(topic(42), lounge), (topic(1), json!({"id": 1, "title": "topic-1"}))])
    );
}

#[tokio::test]
async fn either_list_may_be_left_out() {
    let file = file_with(r#"{"topics": [{"id": 5, "title": "Five"}]}"#);
    let directory = BuiltinDirectory::from_json_file(file.path()).expect("a valid file");
    assert_eq!(directory.users(&[user(5)]).await[&user(5)], json!({"id": 5, "username": "user-5"}));
    assert_eq!(directory.topics(&[topic(5)]).await[&topic(5)], json!({"id": 5, "title": "Five"}));
    assert!(BuiltinDirectory::from_json_file(file_with("{}").path()).is_ok());
}

fn file_error(contents: &str) -> String {
    let file = file_with(contents);
    let error = BuiltinDirectory::from_json_file(file.path()).expect_err("must be refused");
    let message = error.to_string();
    assert!(matches!(error, IdentityError::File { ref path, .. } if path == file.path()), "{error:?}");
    assert!(message.contains(&file.path().display().to_string()), "names the file: {message}");
    message
}

#[test]
fn bad_files_are_errors_naming_the_file() {
    let missing = std::env::temp_dir().join("chat-identity-no-such-directory-file.json");
    let error = BuiltinDirectory::from_json_file(&missing).expect_err("a missing file must be refused");
    assert!(error.to_string().contains(&missing.display().to_string()), "{error}");
    assert!(error.to_string().contains("cannot read"), "{error}");

    let cases: [(&str, &str); 9] = [
        ("{\"users\": [", "not valid JSON"),
        ("[]", "must be a JSON object"),
        (r#"{"user": []}"#, "unknown key \"user\""),
        (r#"{"users": {"id": 1}}"#, "\"users\" must be a list"),
        (r#"{"users": [{"username": "x"}]}"#, "users[0]"),
        (r#"{"users": [{"id": 1}, {"id": 0}]}"#, "users[1]"),
        (r#"{"topics": [{"id": "abc"}]}"#, "topics[0]"),
        (r#"{"topics": [7]}"#, "topics[0]"),
        (r#"{"users": [{"id": 1}, {"id": "1"}]}"#, "id 1 is listed twice"),
    ];
    for (contents, expected) in cases {
        let message = file_error(contents);
        assert!(message.contains(expected), "{contents}: {message}");
    }
}

#[test]
fn a_value_is_shared_as_a_directory_trait_object() {
    // The daemon hands the directory down as `Arc<dyn Directory>`.
    let directory: std::sync::Arc<dyn Directory> = std::sync::Arc::new(BuiltinDirectory::new());
    assert!(format!("{directory:?}").contains("BuiltinDirectory"));
    assert_eq!(chat_identity::directory::degraded_profile(1), json!({"id": 1}));
}
