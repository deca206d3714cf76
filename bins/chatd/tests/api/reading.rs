//! Read positions and unread counts: `POST /api/{target}/{id}/read`, the inbox's `unread` and
//! `unread_total`, `state.read` on history pages, and the `read` events to the reader's devices and
//! the DM partner — exact through sends, edits, deletes and concurrent reads.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, backends, spawn_app, spawn_app_with, test_settings, token_for};
use crate::ws_client::WsClient;

/// `POST <chat>/read` as `user` with `body`; returns the answer after checking it is a 200.
async fn read(app: &TestApp, user: u64, chat: &str, body: Value) -> Value {
    let answer = app.post(&format!("{chat}/read"), user, body).await;
    answer.assert_status(200);
    answer.body["read"].clone()
}

/// `user`'s unread count per inbox entry (`user-2`, `topic-9`), and their `unread_total`.
async fn unread(app: &TestApp, user: u64) -> (Vec<(String, u64)>, u64) {
    let inbox = app.get("/api/list?per_page=100", user).await;
    inbox.assert_status(200);
    let entries = inbox.body["entries"].as_array().expect("entries");
    let counts = entries
        .iter()
        .map(|entry| {
            let name = format!("{}-{}", entry["type"].as_str().unwrap(), entry["id"]);
            (name, entry["unread"].as_u64().expect("every entry has unread"))
        })
        .collect();
    (counts, inbox.body["state"]["unread_total"].as_u64().expect("the inbox has unread_total"))
}

fn entry(name: &str, count: u64) -> (String, u64) {
    (name.to_owned(), count)
}

fn id(message: &Value) -> String {
    message["id"].as_str().expect("a message id").to_owned()
}

async fn counts_follow_sends_reads_edits_and_deletes(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.send_text(1, "/api/user/2", "a").await;
    let b = app.send_text(1, "/api/user/2", "b").await;
    let c = app.send_text(1, "/api/user/2", "c").await;
    app.send_text(2, "/api/user/1", "x").await;
    // Never read: everything by the other side counts, one's own never.
    assert_eq!(unread(&app, 2).await, (vec![entry("user-1", 3)], 3));
    assert_eq!(unread(&app, 1).await, (vec![entry("user-2", 1)], 1));

    assert_eq!(read(&app, 2, "/api/user/1", json!({"message": id(&b)})).await, json!({"message": id(&b), "unread": 1}));
    assert_eq!(unread(&app, 2).await, (vec![entry("user-1", 1)], 1));
    // Never backward: an older message changes nothing and answers the current state.
    assert_eq!(read(&app, 2, "/api/user/1", json!({"message": id(&a)})).await, json!({"message": id(&b), "unread": 1}));
    // An edit changes no count; deleting an unread message does.
    app.post(&format!("/api/user/2/{}", id(&c)), 1, json!({"text": "c, edited"})).await.assert_status(200);
    assert_eq!(unread(&app, 2).await, (vec![entry("user-1", 1)], 1));
    app.delete(&format!("/api/user/2/{}", id(&c)), 1).await.assert_status(200);
    assert_eq!(unread(&app, 2).await, (vec![entry("user-1", 0)], 0));
    // Deleting a read message moves nobody: the read position shows as the latest message before it.
    app.delete(&format!("/api/user/2/{}", id(&b)), 1).await.assert_status(200);
    let history = app.get("/api/user/1", 2).await;
    assert_eq!(history.body["state"]["read"], json!({"1": null, "2": id(&a)}));
    assert_eq!(unread(&app, 2).await, (vec![entry("user-1", 0)], 0));

    let d = app.send_text(1, "/api/user/2", "d").await;
    app.send_text(3, "/api/user/2", "from 3").await;
    app.send_text(3, "/api/user/2", "from 3 again").await;
    assert_eq!(unread(&app, 2).await, (vec![entry("user-3", 2), entry("user-1", 1)], 3));
    // `{}` reads up to the latest message.
    assert_eq!(read(&app, 2, "/api/user/1", json!({})).await, json!({"message": id(&d), "unread": 0}));
    assert_eq!(unread(&app, 2).await, (vec![entry("user-3", 2), entry("user-1", 0)], 2));
    // The partner's side: user 1 never read, and user 2's "x" is the one message by the other side.
    let history = app.get("/api/user/2", 1).await;
    assert_eq!(history.body["state"]["read"], json!({"1": null, "2": id(&d)}));
    assert_eq!(read(&app, 1, "/api/user/2", json!({})).await, json!({"message": id(&d), "unread": 0}));

    // A topic counts in its own entry, not in the total (docs/api.md says why).
    app.send_text(1, "/api/topic/9", "t1").await;
    let t2 = app.send_text(2, "/api/topic/9", "t2").await;
    app.send_text(3, "/api/topic/9", "t3").await;
    assert_eq!(unread(&app, 1).await, (vec![entry("topic-9", 2), entry("user-2", 0)], 0));
    assert_eq!(
        read(&app, 1, "/api/topic/9", json!({"message": id(&t2)})).await,
        json!({"message": id(&t2), "unread": 1})
    );
    assert_eq!(unread(&app, 1).await, (vec![entry("topic-9", 1), entry("user-2", 0)], 0));
    let history = app.get("/api/topic/9", 1).await;
    assert_eq!(history.body["state"]["read"], json!({"1": id(&t2)}));
    assert_eq!(app.get("/api/topic/9", 4).await.body["state"]["read"], json!({"4": null}));
}
backends!(counts_follow_sends_reads_edits_and_deletes, counts_follow_sends_reads_edits_and_deletes);

async fn reads_reach_every_device_and_the_partner(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut phone = WsClient::authenticated(&app, 2).await;
    let mut laptop = WsClient::authenticated(&app, 2).await;
    let mut sender = WsClient::authenticated(&app, 1).await;
    let first = app.send_text(1, "/api/user/2", "first").await;
    let second = app.send_text(1, "/api/user/2", "second").await;
    for client in [&mut phone, &mut laptop, &mut sender] {
        client.expect("new-message").await;
        client.expect("new-message").await;
    }
    let before_read = phone.position.clone().expect("a position");

    read(&app, 2, "/api/user/1", json!({"message": id(&first)})).await;
    let mine = json!({"chat": {"type": "user", "id": 1}, "user": 2, "message": id(&first), "unread": 1});
    assert_eq!(phone.expect("read").await, mine);
    assert_eq!(laptop.expect("read").await, mine);
    let receipt = json!({"chat": {"type": "user", "id": 2}, "user": 2, "message": id(&first)});
    assert_eq!(sender.expect("read").await, receipt);
    // Reading the same message again moves nothing and announces nothing: the next event is the
    // next real one.
    read(&app, 2, "/api/user/1", json!({"message": id(&first)})).await;

    // The original's way: marking seen moves the read position too.
    app.post(&format!("/api/user/1/{}", id(&second)), 2, json!({"status": "seen"})).await.assert_status(200);
    assert_eq!(phone.expect("message-seen").await["id"], second["id"]);
    let seen = json!({"chat": {"type": "user", "id": 1}, "user": 2, "message": id(&second), "unread": 0});
    assert_eq!(phone.expect("read").await, seen);
    assert_eq!(sender.expect("message-seen").await["id"], second["id"]);
    assert_eq!(
        sender.expect("read").await,
        json!({"chat": {"type": "user", "id": 2}, "user": 2, "message": id(&second)})
    );
    assert_eq!(unread(&app, 2).await, (vec![entry("user-1", 0)], 0));

    // Durable: a device that was away gets the reads it missed, in order.
    let (mut away, resumed) = WsClient::resumed(&app, 2, &before_read).await;
    assert_eq!((resumed["recovered"].clone(), resumed["missed"].clone()), (json!(true), json!(3)));
    assert_eq!(away.expect("read").await, mine);
    assert_eq!(away.expect("message-seen").await["id"], second["id"]);
    assert_eq!(away.expect("read").await, seen);

    // A topic read goes to the reader's devices only.
    let posted = app.send_text(3, "/api/topic/5", "in a topic").await;
    read(&app, 2, "/api/topic/5", json!({})).await;
    let topic_read = json!({"chat": {"type": "topic", "id": 5}, "user": 2, "message": id(&posted), "unread": 0});
    assert_eq!(laptop.expect("message-seen").await["id"], second["id"]);
    assert_eq!(laptop.expect("read").await, seen);
    assert_eq!(laptop.expect("read").await, topic_read);
    app.send_text(2, "/api/user/1", "after").await;
    assert_eq!(sender.expect("new-message").await["text"], "after");
}
backends!(reads_reach_every_device_and_the_partner, reads_reach_every_device_and_the_partner);

async fn concurrent_sends_and_reads_keep_counts_exact(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(id(&app.send_text(1, "/api/user/2", &format!("m{n}")).await));
    }
    // Two devices read different messages while more arrive.
    let reads = ids.iter().map(|message| {
        let app = &app;
        async move { app.post("/api/user/1/read", 2, json!({"message": message})).await.assert_status(200) }
    });
    let sends = (0..10).map(|n| {
        let app = &app;
        async move { app.send_text(1, "/api/user/2", &format!("n{n}")).await }
    });
    tokio::join!(futures_util::future::join_all(reads), futures_util::future::join_all(sends));
    // The furthest read wins; exactly the ten later sends remain unread.
    let history = app.get("/api/user/1?per_page=100", 2).await;
    assert_eq!(history.body["state"]["read"]["2"], json!(ids[9]));
    assert_eq!(unread(&app, 2).await, (vec![entry("user-1", 10)], 10));
    let texts = app.texts("/api/user/1?per_page=100", 2).await;
    assert_eq!(texts.iter().filter(|text| text.starts_with('n')).count(), 10);
    assert_eq!(&texts[..10], ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"]);
}
backends!(concurrent_sends_and_reads_keep_counts_exact, concurrent_sends_and_reads_keep_counts_exact);

async fn bad_reads_are_refused_and_change_nothing(backend: Backend) {
    let mut settings = test_settings();
    settings.jwt.topics_claim = "topics".into();
    let app = spawn_app_with(backend, settings, None).await;
    let granted = |user: u64| token_for(json!({"user_id": user, "topics": "*"}));
    let send = |from: u64, path: &'static str| {
        let app = &app;
        async move {
            let body = json!({"type": "text", "text": "hi"}).to_string().into_bytes();
            let answer = app.request(reqwest::Method::POST, path, Some(&granted(from)), Some(body)).await;
            answer.assert_status(201);
            answer.body["entry"].clone()
        }
    };
    let mine = send(1, "/api/user/2").await;
    let elsewhere = send(1, "/api/user/3").await;
    send(1, "/api/topic/8").await;
    let before = app.snapshot(&[1, 2, 3]).await;
    let post = |path: String, body: Value| {
        let app = &app;
        async move {
            let bytes = body.to_string().into_bytes();
            app.request(reqwest::Method::POST, &path, Some(&granted(2)), Some(bytes)).await
        }
    };
    let cases: [(String, Value, u16, Option<&str>, &str); 7] = [
        ("/api/user/4/read".into(), json!({}), 404, Some("NOT_FOUND"), "Chat not found"),
        ("/api/user/1/read".into(), json!({"message": elsewhere["id"]}), 404, Some("NOT_FOUND"), "Message not found"),
        (
            "/api/user/1/read".into(),
            json!({"message": "00000000-0000-4000-8000-000000000000"}),
            404,
            Some("NOT_FOUND"),
            "Message not found",
        ),
        (
            "/api/user/1/read".into(),
            json!({"message": 5}),
            400,
            Some("INVALID_ARGUMENT"),
            "message must be a message id",
        ),
        ("/api/group/1/read".into(), json!({}), 400, Some("MESSAGES_INVALID_TARGET"), "Invalid target \"group\""),
        ("/api/user/1/read".into(), json!([]), 400, Some("INVALID_ARGUMENT"), "The body must be a JSON object"),
        ("/api/topic/8/read".into(), json!({}), 200, None, ""),
    ];
    for (path, body, status, code, message) in cases {
        let answer = if status == 200 {
            // A topic outside the grant: the same request with a token that grants nothing.
            let bytes = body.to_string().into_bytes();
            let none = token_for(json!({"user_id": 2, "topics": []}));
            app.request(reqwest::Method::POST, &path, Some(&none), Some(bytes)).await
        } else {
            post(path.clone(), body).await
        };
        if status == 200 {
            answer.assert_error(403, "TOPIC_FORBIDDEN");
        } else {
            answer.assert_error(status, code);
            assert_eq!(answer.body["message"], json!(message), "{path}");
        }
    }
    assert_eq!(app.snapshot(&[1, 2, 3]).await, before, "no refused read changed anything");
    // No body, or `null`, reads up to the latest, as `{}` does.
    for body in [None, Some(b"null".to_vec())] {
        let answer = app.request(reqwest::Method::POST, "/api/user/1/read", Some(&granted(2)), body).await;
        answer.assert_status(200);
        assert_eq!(answer.body["read"], json!({"message": mine["id"], "unread": 0}));
    }
    // And the good one still works.
    let done = post("/api/user/1/read".into(), json!({"message": mine["id"]})).await;
    done.assert_status(200);
    assert_eq!(
        done.body,
        json!({"state": {"key": "myplatform:dm:1-2", "inbox_key": "user-1"}, "read": {"message": mine["id"], "unread": 0}})
    );
}
backends!(bad_reads_are_refused_and_change_nothing, bad_reads_are_refused_and_change_nothing);
