//! chat-service embedded in a plain Tokio program — no actix, no HTTP — on the in-memory store and
//! the built-in directory: user 2 listens through the realtime hub, user 1 sends, user 2 hears the
//! message and reads the conversation. It checks what it prints, so CI runs it.
//!
//! `cargo run -p chat-service --example embed_service` (also with `--no-default-features`: none of
//! the Redis, JWT or platform-API adapters is needed).

#![expect(clippy::print_stdout, reason = "an example shows what happens on its standard output")]

use chat_domain::{
    Caller, ChatEvent, ChatTarget, DomainHandle, HistoryQuery, MessageBody, MessageText, PageRequest, UserId,
};
use chat_service::{Adapters, ChatService, Hub, HubSettings, ResumeFrom, ServiceSettings};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One backend serves as the store, the event bus and the presence store.
    let adapters = Adapters::in_memory();
    let service = ChatService::new(adapters.store, adapters.directory, ServiceSettings::default());
    // The hub attaches itself to the bus: a second hub on the same backend would be refused.
    let hub = Hub::new(adapters.bus, adapters.presence, HubSettings::default())?;

    let tenant = DomainHandle::parse("example")?;
    let alice = Caller::user_with_every_topic(UserId::new(1)?);
    let bob = Caller::user_with_every_topic(UserId::new(2)?);

    // Bob listens from now on: his user channel carries every event of his chats.
    let (mut bob_listens, _) = hub.connect(&tenant, bob.clone(), ResumeFrom::Now).await?;

    let text = MessageText::parse("hello from a Tokio program".to_owned(), service.settings().max_text_chars.get())?;
    let sent = service.send(&tenant, &alice, ChatTarget::User(bob.user()), MessageBody::Text(text), None).await?;
    println!("user 1 sent message {}", sent.message.id);

    // Bob hears it (presence events may come first).
    let heard = loop {
        let delivery = bob_listens.next_event().await.ok_or("the connection ended")?;
        if let ChatEvent::NewMessage { message, .. } = delivery.event.as_ref() {
            break message.clone();
        }
    };
    assert_eq!(heard.id, sent.message.id, "user 2 hears the message user 1 sent");
    println!("user 2 heard: {:?}", heard.body.fields().0.unwrap_or_default());

    // And reads the conversation, with the profiles of its authors.
    let page = HistoryQuery::Page(PageRequest::new(1, 10));
    let history = service.history(&tenant, &bob, ChatTarget::User(alice.user()), page).await?;
    assert_eq!(history.total, 1);
    for (message, author) in &history.messages {
        println!("history: {} by {}", message.body.fields().0.unwrap_or_default(), author.json());
    }

    bob_listens.close().await;
    Ok(())
}
