//! The OpenAPI document at `/api/openapi.json`: it lists every route and method chatd answers, with
//! their parameters, security and errors, and real answers of the running chatd — and the request
//! bodies it accepts or refuses — agree with its schemas, so the document cannot drift from the code.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Answer, Backend, TestApp, backends, spawn_app, spawn_app_with, test_settings, token};

/// Every path chatd serves over HTTP, with the methods it answers. The realtime doors (`/ws`,
/// `/socket.io/`) are not REST and not in the document.
const ROUTES: &[(&str, &[&str])] = &[
    ("/", &["GET"]),
    ("/healthz", &["GET"]),
    ("/readyz", &["GET"]),
    ("/metrics", &["GET"]),
    ("/api", &["GET"]),
    ("/api/openapi.json", &["GET"]),
    ("/api/list", &["GET"]),
    ("/api/events", &["GET"]),
    ("/api/{target}/{id}", &["GET", "POST"]),
    ("/api/{target}/{id}/read", &["POST"]),
    ("/api/{target}/{id}/{message_id}", &["POST", "DELETE"]),
];

/// The document as chatd serves it.
struct Document(Value);

impl Document {
    async fn fetch(app: &TestApp) -> Self {
        // No token needed.
        let response = app.client.get(format!("{}/api/openapi.json", app.address)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json");
        Self(response.json().await.unwrap())
    }

    fn operation(&self, path: &str, method: &str) -> &Value {
        let operation = &self.0["paths"][path][method.to_ascii_lowercase()];
        assert!(operation.is_object(), "no {method} {path} in the document");
        operation
    }

    /// A response of an operation, following its `$ref` to a named response.
    fn response(&self, path: &str, method: &str, status: u16) -> &Value {
        let response = &self.operation(path, method)["responses"][status.to_string()];
        match response["$ref"].as_str() {
            Some(reference) => {
                let name = reference.strip_prefix("#/components/responses/").expect("a named response");
                &self.0["components"]["responses"][name]
            }
            None => response,
        }
    }

    /// A validator for `schema`, whose `$ref`s point into this document's components.
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.0["components"],
            "allOf": [schema],
        });
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|error| panic!("{schema} is not a valid schema: {error}"))
    }

    /// The validator of an answer's JSON body.
    fn answer_schema(&self, path: &str, method: &str, status: u16) -> jsonschema::Validator {
        let response = self.response(path, method, status);
        let schema = &response["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{method} {path} documents no JSON body for {status}");
        self.validator(schema)
    }

    /// The validator of an operation's request body.
    fn body_schema(&self, path: &str, method: &str) -> jsonschema::Validator {
        let body = &self.operation(path, method)["requestBody"];
        assert_eq!(body["required"], json!(true), "{method} {path}");
        self.validator(&body["content"]["application/json"]["schema"])
    }

    /// The `code`s a documented error answer may carry.
    fn error_codes(&self, path: &str, method: &str, status: u16) -> BTreeSet<String> {
        let schema = &self.response(path, method, status)["content"]["application/json"]["schema"];
        assert_eq!(schema["allOf"][0]["$ref"], json!("#/components/schemas/Error"), "{method} {path} {status}");
        let codes = schema["allOf"][1]["properties"]["code"]["enum"].as_array().expect("the codes");
        // `null` is a code too: the original sent it for some errors.
        codes.iter().map(|code| code.as_str().unwrap_or("null").to_owned()).collect()
    }
}

/// Asserts that `validator` accepts `instance`, listing every error if not.
#[track_caller]
fn assert_valid(validator: &jsonschema::Validator, instance: &Value, what: &str) {
    let errors: Vec<String> =
        validator.iter_errors(instance).map(|error| format!("{} at {}", error, error.instance_path())).collect();
    assert!(errors.is_empty(), "{what} does not match the document: {errors:#?}\n{instance:#}");
}

/// Asserts that an answer has the status and matches the document's schema for it.
#[track_caller]
fn assert_documented(document: &Document, path: &str, method: &str, answer: &Answer, status: u16) {
    assert_eq!(answer.status.as_u16(), status, "{method} {path}: {:#}", answer.body);
    let what = format!("the {status} answer of {method} {path}");
    assert_valid(&document.answer_schema(path, method, status), &answer.body, &what);
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

// The document does not depend on the store, so this test runs once.
#[actix_web::test]
async fn the_document_lists_every_route_with_its_parameters_security_and_errors() {
    let app = spawn_app(Backend::Memory).await;
    let document = Document::fetch(&app).await;
    let doc = &document.0;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."), "{}", doc["openapi"]);
    assert_eq!(doc["info"]["version"], json!(env!("CARGO_PKG_VERSION")));

    // Exactly the routes chatd serves, each with exactly the methods it answers …
    let paths: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(paths, ROUTES.iter().map(|(path, _)| (*path).to_owned()).collect());
    for (path, methods) in ROUTES {
        let documented: BTreeSet<String> =
            doc["paths"][path].as_object().unwrap().keys().map(|method| method.to_ascii_uppercase()).collect();
        assert_eq!(documented, set(methods), "{path}");
        // … which are also exactly the methods chatd's 405 answer names in `Allow` for any other,
        // with `HEAD` beside each `GET` (HTTP's `GET` without the body, which the document leaves
        // implied rather than listing it as an operation of its own).
        let concrete = path
            .replace("{target}", "user")
            .replace("{id}", "2")
            .replace("{message_id}", "7d3f1c1e-0000-4000-8000-000000000000");
        let has_get = methods.contains(&"GET");
        let allowed: BTreeSet<&str> = methods.iter().copied().chain(has_get.then_some("HEAD")).collect();
        let others =
            [Method::PUT, Method::PATCH, Method::OPTIONS].into_iter().chain((!has_get).then_some(Method::HEAD));
        for other in others {
            let response =
                app.client.request(other.clone(), format!("{}{concrete}", app.address)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{other} {concrete}");
            let allow = response.headers().get("allow").unwrap_or_else(|| panic!("{other} {concrete}: no Allow"));
            let allow = allow.to_str().unwrap();
            assert_eq!(allow.split(", ").collect::<BTreeSet<_>>(), allowed, "{concrete}");
        }
    }

    // The security schemes: the token header and a bearer token, either one on the routes that need
    // a caller; optional on `GET /api`; none on the service's own routes.
    let schemes = &doc["components"]["securitySchemes"];
    let token = &schemes["token"];
    assert_eq!(
        (&token["type"], &token["in"], &token["name"]),
        (&json!("apiKey"), &json!("header"), &json!("X-Auth-Token"))
    );
    assert_eq!((&schemes["bearer"]["type"], &schemes["bearer"]["scheme"]), (&json!("http"), &json!("bearer")));
    let either = json!([{"token": []}, {"bearer": []}]);
    for (path, method) in [
        ("/api/list", "GET"),
        ("/api/events", "GET"),
        ("/api/{target}/{id}", "GET"),
        ("/api/{target}/{id}", "POST"),
        ("/api/{target}/{id}/read", "POST"),
        ("/api/{target}/{id}/{message_id}", "POST"),
        ("/api/{target}/{id}/{message_id}", "DELETE"),
    ] {
        assert_eq!(document.operation(path, method)["security"], either, "{method} {path}");
        assert_eq!(document.error_codes(path, method, 401), set(&["NOT_AUTHENTICATED", "INVALID_TOKEN_ERR"]));
    }
    assert_eq!(document.operation("/api", "GET")["security"], json!([{}, {"token": []}, {"bearer": []}]));
    for path in ["/", "/healthz", "/readyz", "/metrics", "/api/openapi.json"] {
        assert!(document.operation(path, "GET").get("security").is_none(), "{path}");
    }

    // The parameters, with their real constraints.
    let parameters = |path: &str, method: &str| -> Vec<Value> {
        document.operation(path, method)["parameters"].as_array().cloned().unwrap_or_default()
    };
    let history = parameters("/api/{target}/{id}", "GET");
    let names: Vec<&str> = history.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["target", "id", "page", "per_page", "limit", "before", "after"]);
    assert_eq!((&history[0]["in"], &history[0]["required"]), (&json!("path"), &json!(true)));
    assert_eq!(history[0]["schema"]["enum"], json!(["user", "topic"]));
    assert_eq!(history[1]["schema"]["type"], json!("integer"));
    assert_eq!(
        (&history[1]["schema"]["minimum"], &history[1]["schema"]["maximum"]),
        (&json!(1), &json!(9007199254740991_u64))
    );
    for paging in &history[2..5] {
        assert_eq!((&paging["in"], &paging["required"]), (&json!("query"), &json!(false)));
        assert_eq!((&paging["schema"]["minimum"], &paging["schema"]["maximum"]), (&json!(1), &json!(4294967295_u64)));
    }
    for cursor in &history[5..] {
        assert_eq!(
            (&cursor["in"], &cursor["required"], &cursor["schema"]["format"]),
            (&json!("query"), &json!(false), &json!("uuid"))
        );
    }
    let shape = |parameter: &Value| (parameter["name"].clone(), parameter["in"].clone(), parameter["schema"].clone());
    let inbox: Vec<_> = parameters("/api/list", "GET").iter().map(shape).collect();
    assert_eq!(inbox, history[2..5].iter().map(shape).collect::<Vec<_>>());
    let message = parameters("/api/{target}/{id}/{message_id}", "DELETE");
    assert_eq!(message[..2], history[..2]);
    assert_eq!((&message[2]["name"], &message[2]["schema"]["format"]), (&json!("message_id"), &json!("uuid")));
    assert_eq!(parameters("/api/{target}/{id}/{message_id}", "POST"), message);

    // The answers each operation documents, and the codes of its errors.
    let statuses = |path: &str, method: &str| -> Vec<String> {
        document.operation(path, method)["responses"].as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(statuses("/api/list", "GET"), ["200", "400", "401", "431", "500", "503"]);
    assert_eq!(statuses("/api/{target}/{id}", "GET"), ["200", "400", "401", "403", "404", "431", "500", "503"]);
    assert_eq!(
        statuses("/api/{target}/{id}", "POST"),
        ["201", "400", "401", "403", "404", "413", "422", "429", "431", "500", "503"]
    );
    assert_eq!(document.error_codes("/api/{target}/{id}", "POST", 422), set(&["IDEMPOTENCY_KEY_REUSED"]));
    let events: Vec<(Value, Value, Value)> = parameters("/api/events", "GET")
        .iter()
        .map(|p| (p["name"].clone(), p["in"].clone(), p["required"].clone()))
        .collect();
    assert_eq!(
        events,
        [
            (json!("since"), json!("query"), json!(true)),
            (json!("limit"), json!("query"), json!(false)),
            (json!("topic"), json!("query"), json!(false))
        ]
    );
    let send_parameters = parameters("/api/{target}/{id}", "POST");
    let key = send_parameters.iter().find(|p| p["name"] == "Idempotency-Key").expect("the Idempotency-Key header");
    assert_eq!((&key["in"], &key["required"]), (&json!("header"), &json!(false)));
    assert_eq!(
        statuses("/api/{target}/{id}/{message_id}", "POST"),
        ["200", "400", "401", "403", "404", "409", "413", "431", "500", "503"]
    );
    assert_eq!(
        statuses("/api/{target}/{id}/{message_id}", "DELETE"),
        ["200", "400", "401", "403", "404", "409", "431", "500", "503"]
    );
    assert_eq!(statuses("/api", "GET"), ["200", "401", "431"]);
    assert_eq!(statuses("/readyz", "GET"), ["200", "431", "500", "503"]);
    for (path, methods) in ROUTES {
        for method in *methods {
            assert_eq!(document.error_codes(path, method, 431), set(&["HEADERS_TOO_LARGE"]), "{method} {path}");
        }
    }
    assert_eq!(
        document.error_codes("/api/{target}/{id}", "POST", 400),
        set(&["MESSAGES_INVALID_TARGET", "INVALID_ARGUMENT", "MESSAGES_INVALID_TYPE", "BAD_REQUEST", "null"])
    );
    assert_eq!(document.error_codes("/api/{target}/{id}", "GET", 403), set(&["TOPIC_FORBIDDEN"]));
    assert_eq!(
        document.error_codes("/api/{target}/{id}/{message_id}", "DELETE", 403),
        set(&["FORBIDDEN", "TOPIC_FORBIDDEN"])
    );
    for (path, method, status) in
        [("/api/{target}/{id}", "POST", 429), ("/api/list", "GET", 503), ("/readyz", "GET", 503)]
    {
        assert!(document.response(path, method, status)["headers"]["Retry-After"].is_object(), "{method} {path}");
    }
    let method_not_allowed = &doc["components"]["responses"]["MethodNotAllowed"];
    assert!(method_not_allowed["headers"]["Allow"].is_object());
    assert_eq!(document.response("/metrics", "GET", 200)["content"]["text/plain"]["schema"]["type"], json!("string"));
}

async fn answers_and_bodies_agree_with_the_document(backend: Backend) {
    let app = spawn_app(backend).await;
    let document = Document::fetch(&app).await;
    const CHAT: &str = "/api/{target}/{id}";
    const MESSAGE: &str = "/api/{target}/{id}/{message_id}";
    const READ: &str = "/api/{target}/{id}/read";

    // The service's own routes.
    for path in ["/", "/healthz", "/readyz"] {
        assert_documented(&document, path, "GET", &app.request(Method::GET, path, None, None).await, 200);
    }
    assert_documented(&document, "/api", "GET", &app.request(Method::GET, "/api", None, None).await, 200);
    let refused = app.request(Method::GET, "/api", Some("not.a.token"), None).await;
    assert_documented(&document, "/api", "GET", &refused, 401);

    // A conversation: a text, an image, a topic message, read, marked seen, listed, deleted.
    let text = app.post("/api/user/2", 1, json!({"type": "text", "text": "Hello, world!"})).await;
    assert_documented(&document, CHAT, "POST", &text, 201);
    let image = json!({"type": "image", "image": {"url": "https://example.com/cat.png", "width": 640}});
    let image = app.post("/api/user/2", 1, image).await;
    assert_documented(&document, CHAT, "POST", &image, 201);
    let topic = app.post("/api/topic/42", 2, json!({"type": "image", "image": "https://example.com/dog.png"})).await;
    assert_documented(&document, CHAT, "POST", &topic, 201);
    let text_id = text.body["entry"]["id"].as_str().unwrap();
    let seen = app.post(&format!("/api/user/1/{text_id}"), 2, json!({"status": "seen"})).await;
    assert_documented(&document, MESSAGE, "POST", &seen, 200);
    assert_eq!(seen.body["entry"]["status"], json!("seen"));
    let history = app.get("/api/user/2?per_page=5", 1).await;
    assert_documented(&document, CHAT, "GET", &history, 200);
    assert_eq!(history.body["messages"].as_array().unwrap().len(), 2);
    let older = app.get(&format!("/api/user/1?before={}", image.body["entry"]["id"].as_str().unwrap()), 2).await;
    assert_documented(&document, CHAT, "GET", &older, 200);
    assert_eq!(older.body["state"]["more"], json!(false));
    let read = app.post("/api/user/1/read", 2, json!({})).await;
    assert_documented(&document, READ, "POST", &read, 200);
    let inbox = app.get("/api/list", 2).await;
    assert_documented(&document, "/api/list", "GET", &inbox, 200);
    assert_eq!(inbox.body["entries"].as_array().unwrap().len(), 2, "a topic and a DM");
    let image_id = image.body["entry"]["id"].as_str().unwrap();
    let deleted = app.delete(&format!("/api/user/2/{image_id}"), 1).await;
    assert_documented(&document, MESSAGE, "DELETE", &deleted, 200);
    app.delete(&format!("/api/user/2/{text_id}"), 1).await;
    let emptied = app.get("/api/list", 1).await;
    assert_eq!(emptied.body["entries"][0]["latest"], Value::Null);
    assert_documented(&document, "/api/list", "GET", &emptied, 200);

    // The schemas are not so loose that anything passes: a send answer is not a history page.
    let history_schema = document.answer_schema(CHAT, "GET", 200);
    assert!(!history_schema.is_valid(&text.body));
    let mut numeric_author = history.body.clone();
    numeric_author["messages"][0]["author"] = json!(1);
    assert!(!history_schema.is_valid(&numeric_author), "a history's authors are profiles");

    // Error answers, each with a code its operation documents.
    let padded = app.client.get(format!("{}/api/list", app.address)).header("X-Padding", "p".repeat(20 * 1024));
    let padded = padded.send().await.unwrap();
    let too_large =
        Answer { status: padded.status(), headers: padded.headers().clone(), body: padded.json().await.unwrap() };
    let guarded = {
        let mut settings = test_settings();
        settings.jwt.topics_claim = "topics".into();
        spawn_app_with(backend, settings, None).await
    };
    let forbidden_topic = guarded.get("/api/topic/42", 1).await;
    let errors: [(&str, &str, Answer, u16); 13] = [
        (READ, "POST", app.post("/api/user/9/read", 1, json!({})).await, 404),
        (READ, "POST", app.post("/api/user/2/read", 1, json!({"message": image_id})).await, 404),
        (READ, "POST", app.post("/api/user/2/read", 1, json!({"message": 1})).await, 400),
        (CHAT, "GET", app.get(&format!("/api/user/3?after={image_id}"), 1).await, 400),
        ("/api/list", "GET", too_large, 431),
        (CHAT, "GET", forbidden_topic, 403),
        (CHAT, "GET", app.get("/api/group/2", 1).await, 400),
        (CHAT, "GET", app.request(Method::GET, "/api/user/2", None, None).await, 401),
        (CHAT, "POST", app.request(Method::POST, "/api/user/2", Some(&token(1)), Some(b"{".to_vec())).await, 400),
        (CHAT, "POST", app.post("/api/user/1", 1, json!({"type": "text", "text": "me"})).await, 400),
        (
            MESSAGE,
            "POST",
            app.post(
                &format!("/api/topic/42/{}", topic.body["entry"]["id"].as_str().unwrap()),
                1,
                json!({"image": "mine"}),
            )
            .await,
            403,
        ),
        (MESSAGE, "DELETE", app.delete(&format!("/api/user/2/{image_id}"), 1).await, 404),
        ("/api/list", "GET", app.get("/api/list?page=0", 1).await, 400),
    ];
    for (path, method, answer, status) in &errors {
        assert_documented(&document, path, method, answer, *status);
        let code = answer.body["code"].as_str().unwrap_or("null");
        assert!(document.error_codes(path, method, *status).contains(code), "{method} {path}: {code}");
    }

    // The send body's schema says what chatd accepts: each body is valid by the schema exactly
    // when chatd stores it. White space is Rust's (what `trim` removes), not `\s` of a regex.
    let send = document.body_schema(CHAT, "POST");
    for (body, accepted) in [
        (json!({"type": "text", "text": "hi"}), true),
        (json!({"type": "text", "text": " hi ", "extra": [1]}), true),
        (json!({"type": "text", "text": "x".repeat(4000)}), true),
        (json!({"type": "text", "text": "\u{feff}"}), true),
        (json!({"type": "text", "text": "\u{1c}"}), true),
        (json!({"type": "image", "image": {"url": "u"}}), true),
        (json!({"type": "image", "image": "u"}), true),
        (json!({"type": "text", "text": "x".repeat(4001)}), false),
        (json!({"type": "text", "text": ""}), false),
        (json!({"type": "text", "text": " \t\n"}), false),
        (json!({"type": "text", "text": "\u{85}\u{a0}\u{3000}"}), false),
        (json!({"type": "text", "text": 42}), false),
        (json!({"type": "text", "image": "u"}), false),
        (json!({"type": "image", "image": {}}), false),
        (json!({"type": "image", "image": " "}), false),
        (json!({"type": "image", "image": [1]}), false),
        (json!({"type": "video", "video": "u"}), false),
        (json!({"text": "hi"}), false),
        (json!([]), false),
    ] {
        let answer = app.post("/api/user/2", 1, body.clone()).await;
        assert_eq!(answer.status == StatusCode::CREATED, accepted, "chatd on {body}: {:#}", answer.body);
        assert_eq!(send.is_valid(&body), accepted, "the schema on {body}");
    }

    // The same for an edit of a text message by its author.
    let edit = document.body_schema(MESSAGE, "POST");
    let id = app.send_text(1, "/api/user/2", "to edit").await["id"].as_str().unwrap().to_owned();
    for (body, accepted) in [
        (json!({"text": "edited"}), true),
        (json!({"text": "again", "image": null, "status": null}), true),
        (json!({}), false),
        (json!({"text": null}), false),
        (json!({"text": " "}), false),
        (json!({"status": "read"}), false),
        (json!({"image": ""}), false),
    ] {
        let answer = app.post(&format!("/api/user/2/{id}"), 1, body.clone()).await;
        assert_eq!(answer.status == StatusCode::OK, accepted, "chatd on {body}: {:#}", answer.body);
        assert_eq!(edit.is_valid(&body), accepted, "the schema on {body}");
    }
}
backends!(answers_match_the_document, answers_and_bodies_agree_with_the_document);

#[actix_web::test]
async fn the_document_follows_the_configuration() {
    let mut settings = test_settings();
    settings.chat.max_text_chars = 10;
    settings.jwt.header = "x-chat-token".into();
    let app = spawn_app_with(Backend::Memory, settings, None).await;
    let document = Document::fetch(&app).await;
    let scheme = &document.0["components"]["securitySchemes"]["token"];
    assert_eq!((&scheme["in"], &scheme["name"]), (&json!("header"), &json!("X-Chat-Token")));
    assert_eq!(document.0["components"]["schemas"]["Text"]["maxLength"], json!(10));

    // The send body's schema and chatd agree on the configured length.
    let send = document.body_schema("/api/{target}/{id}", "POST");
    for (text, accepted) in [("x".repeat(10), true), ("x".repeat(11), false)] {
        let body = json!({"type": "text", "text": text});
        let answer = app
            .client
            .post(format!("{}/api/user/2", app.address))
            .header("X-Chat-Token", token(1))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status() == StatusCode::CREATED, accepted, "chatd on {body}");
        assert_eq!(send.is_valid(&body), accepted, "the schema on {body}");
    }
}
