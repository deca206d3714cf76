//! Topic access control (`jwt.topics_claim`): a token lists the topics its user may read, post in
//! and follow; every other topic is refused on REST and on both realtime doors, and changes nothing.

use futures_util::SinkExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Answer, Backend, TestApp, backends, spawn_app, spawn_app_with, test_settings, token_for};
use crate::realtime_socketio::{ack, event, next_text};
use crate::ws_client::WsClient;

/// A chatd with topic access control on, reading grants from the `topics` claim.
async fn spawn_guarded(backend: Backend) -> TestApp {
    let mut settings = test_settings();
    settings.jwt.topics_claim = "topics".into();
    spawn_app_with(backend, settings, None).await
}

/// A token for `user`, granted `topics` (a list of ids or `"*"`).
fn granted(user: u64, topics: Value) -> String {
    token_for(json!({"user_id": user, "topics": topics}))
}

async fn call(app: &TestApp, method: Method, path: &str, token: &str, body: Option<Value>) -> Answer {
    app.request(method, path, Some(token), body.map(|b| b.to_string().into_bytes())).await
}

async fn only_granted_topics_are_open_over_rest(backend: Backend) {
    let app = spawn_guarded(backend).await;
    let member = granted(1, json!([42, "43"]));
    let staff = granted(9, json!("*"));
    let text = |t: &str| Some(json!({"type": "text", "text": t}));

    let sent = call(&app, Method::POST, "/api/topic/42", &member, text("hello members")).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{:#}", sent.body);
    let in_other = call(&app, Method::POST, "/api/topic/44", &staff, text("staff only")).await;
    assert_eq!(in_other.status, StatusCode::CREATED, "{:#}", in_other.body);
    let theirs = in_other.body["entry"]["id"].as_str().unwrap().to_owned();
    assert_eq!(call(&app, Method::GET, "/api/topic/43", &member, None).await.status, StatusCode::OK);

    let before = app.snapshot(&[1, 9]).await;
    let refusals = [
        call(&app, Method::GET, "/api/topic/44", &member, None).await,
        call(&app, Method::POST, "/api/topic/44", &member, text("let me in")).await,
        call(&app, Method::POST, &format!("/api/topic/44/{theirs}"), &member, Some(json!({"status": "seen"}))).await,
        call(&app, Method::DELETE, &format!("/api/topic/44/{theirs}"), &member, None).await,
        // A token without the claim is granted no topic at all.
        call(&app, Method::GET, "/api/topic/42", &token_for(json!({"user_id": 2})), None).await,
    ];
    for refused in &refusals {
        refused.assert_error(403, "TOPIC_FORBIDDEN");
    }
    assert_eq!(refusals[0].body["message"], json!("Topic 44 is not open to you"));
    assert_eq!(app.snapshot(&[1, 9]).await, before, "a refused request changes nothing");

    // DMs are never governed by the grant.
    let dm = call(&app, Method::POST, "/api/user/2", &token_for(json!({"user_id": 1, "topics": []})), text("hi")).await;
    assert_eq!(dm.status, StatusCode::CREATED, "{:#}", dm.body);
    // A claim that is not a list of topic ids makes the token invalid.
    for bad in [json!(42), json!({"42": true}), json!([0])] {
        let answer = call(&app, Method::GET, "/api/list", &granted(1, bad.clone()), None).await;
        answer.assert_error(401, "INVALID_TOKEN_ERR");
        assert_eq!(
            answer.body["message"],
            json!("Invalid token: its topics claim is not a list of topic ids"),
            "{bad}"
        );
    }
}
backends!(topic_access_rest, only_granted_topics_are_open_over_rest);

async fn an_inbox_shows_no_message_of_a_topic_outside_the_grant(backend: Backend) {
    let app = spawn_guarded(backend).await;
    let text = |t: &str| Some(json!({"type": "text", "text": t}));
    let sent = call(&app, Method::POST, "/api/topic/42", &granted(1, json!([42])), text("I was here")).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{:#}", sent.body);
    call(&app, Method::POST, "/api/topic/42", &granted(9, json!("*")), text("said after you left")).await;

    let still_granted = call(&app, Method::GET, "/api/list", &granted(1, json!([42])), None).await;
    assert_eq!(still_granted.body["entries"][0]["latest"]["text"], json!("said after you left"));
    let revoked = call(&app, Method::GET, "/api/list", &granted(1, json!([])), None).await;
    assert_eq!(revoked.status, StatusCode::OK);
    let entry = &revoked.body["entries"][0];
    assert_eq!((&entry["type"], &entry["id"], &entry["latest"]), (&json!("topic"), &json!(42), &Value::Null));
}
backends!(topic_access_inbox, an_inbox_shows_no_message_of_a_topic_outside_the_grant);

async fn without_the_setting_every_topic_is_open(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = granted(1, json!([42]));
    let answer = call(&app, Method::POST, "/api/topic/44", &token, Some(json!({"type": "text", "text": "open"}))).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:#}", answer.body);
}
backends!(topic_access_off, without_the_setting_every_topic_is_open);

async fn ws_connections_follow_and_type_only_in_granted_topics(backend: Backend) {
    let app = spawn_guarded(backend).await;
    let mut client = WsClient::connect(app.ws_url(&format!("/ws?token={}", granted(1, json!([42]))))).await;
    assert_eq!(client.expect("authenticated").await, json!({"user": 1}));

    client.send("subscribe", json!({"topic": 44})).await;
    assert_eq!(
        client.expect("error").await,
        json!({"code": "topic_forbidden", "message": "Topic 44 is not open to you"})
    );
    client.send("typing", json!({"chat": {"type": "topic", "id": 44}})).await;
    assert_eq!(
        client.expect("error").await,
        json!({"code": "topic_forbidden", "message": "Topic 44 is not open to you"})
    );
    // The connection stays, and granted topics work.
    client.subscribe(42).await;

    let staff = granted(9, json!("*"));
    let text = |t: &str| Some(json!({"type": "text", "text": t}));
    call(&app, Method::POST, "/api/topic/44", &staff, text("not for you")).await;
    call(&app, Method::POST, "/api/topic/42", &staff, text("for members")).await;
    let heard = client.expect("new-message").await;
    assert_eq!(
        (heard["text"].clone(), heard["chat"].clone()),
        (json!("for members"), json!({"type": "topic", "id": 42}))
    );
}
backends!(topic_access_ws, ws_connections_follow_and_type_only_in_granted_topics);

async fn socketio_acks_refuse_topics_outside_the_grant(backend: Backend) {
    let app = spawn_guarded(backend).await;
    let url = app.ws_url("/socket.io/?EIO=4&transport=websocket");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert!(next_text(&mut socket).await.starts_with('0'), "an open packet");
    socket.send(Message::text(format!("40{}", json!({"token": granted(1, json!([42]))})))).await.unwrap();
    assert!(next_text(&mut socket).await.starts_with("40{\"sid\":"));
    assert_eq!(event(&next_text(&mut socket).await), ("authenticated".into(), json!({"user": 1})));

    socket.send(Message::text(format!("421{}", json!(["subscribe", {"topic": 44}])))).await.unwrap();
    assert_eq!(
        next_text(&mut socket).await,
        format!("431{}", json!([{"error": "Topic 44 is not open to you", "code": "topic_forbidden"}]))
    );
    socket.send(Message::text(format!("422{}", json!(["subscribe", {"topic": 42}])))).await.unwrap();
    assert_eq!(ack(&next_text(&mut socket).await), (2, json!({"topic": 42})));
}
backends!(topic_access_socketio, socketio_acks_refuse_topics_outside_the_grant);
