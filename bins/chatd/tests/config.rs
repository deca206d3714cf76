//! chatd's configuration: the layers (defaults ← chatd.toml ← NODE_ENV ← `CHATD_*` ← `SOCK_*`),
//! every original `SOCK_*` name, the example file, and the start-up rules that turn settings into
//! adapters (production refuses the development secret, handles and keys are checked).
//!
//! Every test that reads the environment or the working directory runs inside a `figment::Jail`
//! with the environment cleared, so the tests neither see the machine's variables nor each other's.

// `figment::Jail` closures return `figment::Error`, which is large; that is its API.
#![allow(clippy::unwrap_used, clippy::result_large_err)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use chat_domain::{Caller, ChatTarget, DomainError, TopicId, UserId};
use chatd::settings::{Environment, LogFormat, Settings};
use chatd::startup::{self, Application, DEVELOPMENT_JWT_SECRET, Dependencies};
use figment::Jail;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

/// Runs `test` in a fresh temporary working directory with an empty environment.
#[track_caller]
fn jailed(test: impl FnOnce(&mut Jail) -> figment::error::Result<()>) {
    Jail::expect_with(|jail| {
        jail.clear_env();
        test(jail)
    });
}

/// An HS256 token for `user_id`, signed with `secret`.
fn hs256_token(secret: &str, user_id: u64) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "user_id": user_id }),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// The message of a start-up error, or a panic if there was none.
#[track_caller]
fn startup_error<T>(result: Result<T, startup::StartupError>) -> String {
    match result {
        Ok(_) => panic!("expected a start-up error"),
        Err(error) => error.to_string(),
    }
}

/// The message of a loading error, or a panic if the settings loaded.
#[track_caller]
fn load_error(result: Result<Settings, figment::Error>) -> String {
    match result {
        Ok(settings) => panic!("expected a configuration error, got {settings:?}"),
        Err(error) => error.to_string(),
    }
}

fn secret(settings: &Settings) -> Option<String> {
    settings.jwt.secret.as_ref().map(|s| s.expose_secret().to_owned())
}

fn redis_url(settings: &Settings) -> Option<String> {
    settings.redis.effective_url().map(|url| url.expose_secret().to_owned())
}

/// User `n`, granted every topic (the default: no topic access control).
fn user(n: u64) -> Caller {
    Caller::user_with_every_topic(UserId::new(n).unwrap())
}

// ---------------------------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------------------------

#[test]
fn the_built_in_defaults_are_the_originals() {
    jailed(|_| {
        let settings = Settings::load(None)?;
        assert_eq!(settings.env, Environment::Development);
        assert_eq!(settings.http.host, "localhost");
        assert_eq!(settings.http.port, 3005);
        assert_eq!(settings.http.workers, None);
        assert_eq!(settings.http.body_limit_bytes, chat_transport::DEFAULT_BODY_LIMIT);
        assert_eq!(settings.http.body_limit_bytes, 1024 * 1024);

        assert!(settings.redis.url.is_none());
        assert_eq!(settings.redis.host, None);
        assert_eq!(settings.redis.port, None);
        assert_eq!(redis_url(&settings), None, "no Redis setting means the in-memory store");
        assert_eq!(settings.redis.prefix, "senna-sockets");
        assert_eq!(settings.redis.connect_timeout_ms, 2000);
        assert_eq!(settings.redis.response_timeout_ms, 2000);

        assert_eq!(settings.chat.handle, "myplatform");
        assert!(settings.chat.tenants.is_empty());
        assert_eq!(settings.chat.max_text_chars, 4000);
        assert_eq!(settings.chat.default_per_page, 10);
        assert_eq!(settings.chat.max_per_page, 100);

        assert_eq!(settings.jwt.algorithm, "HS256");
        assert_eq!(settings.jwt.header, "X-Auth-Token");
        assert_eq!(secret(&settings), None);
        assert_eq!(settings.jwt.public_key, None);
        assert_eq!(settings.jwt.public_key_file, None);
        assert_eq!(settings.jwt.user_claim, "user_id");
        assert_eq!(settings.jwt.leeway_seconds, 5);

        assert_eq!(settings.platform.api_url, None);
        assert_eq!(settings.platform.user_agent, "Senna-Sockets-Server");
        assert_eq!(settings.platform.timeout_ms, 2000);
        assert_eq!(settings.platform.cache_ttl_seconds, 60);
        assert_eq!(settings.platform.cache_stale_seconds, 3600);
        assert_eq!(settings.platform.cache_capacity, 100_000);
        assert_eq!(settings.platform.profiles_file, None);

        assert_eq!(settings.log.format, LogFormat::Text);
        assert_eq!(settings.log.filter, "info");
        Ok(())
    });
}

#[test]
fn chatd_toml_in_the_working_directory_overrides_the_defaults() {
    jailed(|jail| {
        jail.create_file(
            "chatd.toml",
            r#"
                env = "production"

                [http]
                port = 4000
                workers = 3

                [redis]
                prefix = "from-toml"

                [jwt]
                secret = "toml-secret"
                leeway_seconds = 30

                [log]
                format = "json"
                filter = "chatd=debug,info"
            "#,
        )?;
        let settings = Settings::load(None)?;
        assert_eq!(settings.env, Environment::Production);
        assert_eq!(settings.http.port, 4000);
        assert_eq!(settings.http.workers, Some(3));
        assert_eq!(settings.http.host, "localhost", "keys not in the file keep their defaults");
        assert_eq!(settings.redis.prefix, "from-toml");
        assert_eq!(secret(&settings).as_deref(), Some("toml-secret"));
        assert_eq!(settings.jwt.leeway_seconds, 30);
        assert_eq!(settings.log.format, LogFormat::Json);
        assert_eq!(settings.log.filter, "chatd=debug,info");
        Ok(())
    });
}

#[test]
fn chatd_variables_override_the_toml_file() {
    jailed(|jail| {
        jail.create_file("chatd.toml", "[http]\nport = 4000\nhost = \"toml-host\"\n")?;
        jail.set_env("CHATD_HTTP__PORT", "5000");
        let settings = Settings::load(None)?;
        assert_eq!(settings.http.port, 5000);
        assert_eq!(settings.http.host, "toml-host", "only the variable's key is overridden");

        jail.set_env("CHATD_JWT__SECRET", "env-secret");
        jail.set_env("CHATD_CHAT__MAX_PER_PAGE", "50");
        jail.set_env("CHATD_LOG__FORMAT", "json");
        jail.set_env("CHATD_ENV", "production");
        let settings = Settings::load(None)?;
        assert_eq!(secret(&settings).as_deref(), Some("env-secret"));
        assert_eq!(settings.chat.max_per_page, 50);
        assert_eq!(settings.log.format, LogFormat::Json);
        assert_eq!(settings.env, Environment::Production);
        Ok(())
    });
}

#[test]
fn the_demo_is_on_in_development_and_off_in_production_unless_demo_enabled_says_otherwise() {
    jailed(|jail| {
        let settings = Settings::load(None)?;
        assert_eq!(settings.demo.enabled, None);
        assert!(settings.demo.enabled(settings.env), "on by default in development");
        jail.set_env("CHATD_ENV", "production");
        let settings = Settings::load(None)?;
        assert!(!settings.demo.enabled(settings.env), "off by default in production");

        jail.set_env("CHATD_DEMO__ENABLED", "true");
        let settings = Settings::load(None)?;
        assert!(settings.demo.enabled(settings.env), "turned on in production");
        jail.set_env("CHATD_ENV", "development");
        jail.set_env("CHATD_DEMO__ENABLED", "false");
        let settings = Settings::load(None)?;
        assert!(!settings.demo.enabled(settings.env), "turned off in development");

        jail.clear_env();
        jail.create_file("chatd.toml", "[demo]\nenabled = false\n")?;
        assert_eq!(Settings::load(None)?.demo.enabled, Some(false));
        jail.create_file("chatd.toml", "[demo]\nenabled = \"yes\"\n")?;
        assert!(Settings::load(None).is_err(), "not a boolean");
        Ok(())
    });
}

#[test]
fn origin_lists_and_the_topics_claim_come_from_variables_as_documented() {
    jailed(|jail| {
        jail.set_env("CHATD_HTTP__CORS_ORIGINS", r#"["https://app.example.com", "http://localhost:5173"]"#);
        jail.set_env("CHATD_REALTIME__ALLOWED_ORIGINS", r#"["https://app.example.com"]"#);
        jail.set_env("CHATD_JWT__TOPICS_CLAIM", "topics");
        jail.set_env("CHATD_HTTP__HEADER_LIMIT_BYTES", "8192");
        let settings = Settings::load(None)?;
        assert_eq!(settings.http.cors_origins, ["https://app.example.com", "http://localhost:5173"]);
        assert_eq!(settings.realtime.allowed_origins, ["https://app.example.com"]);
        assert_eq!(settings.jwt.topics_claim, "topics");
        assert_eq!(settings.http.header_limit_bytes, 8192);
        Ok(())
    });
}

/// One original variable: the value it is given, and where it must land.
struct Original {
    variable: &'static str,
    value: &'static str,
    /// The `CHATD_*` variable of the same setting, and a value it loses with.
    chatd: (&'static str, &'static str),
    /// A chatd.toml setting the same key to a value it loses with.
    toml: &'static str,
    /// The setting it must land in, read back as text.
    read: fn(&Settings) -> String,
}

const ORIGINALS: &[Original] = &[
    Original {
        variable: "SOCK_ENV",
        value: "production",
        chatd: ("CHATD_ENV", "development"),
        toml: "env = \"development\"\n",
        read: |s| format!("{:?}", s.env).to_lowercase(),
    },
    Original {
        variable: "SOCK_DOMAIN_HANDLE",
        value: "from-sock",
        chatd: ("CHATD_CHAT__HANDLE", "from-chatd"),
        toml: "[chat]\nhandle = \"from-toml\"\n",
        read: |s| s.chat.handle.clone(),
    },
    Original {
        variable: "SOCK_HTTP_HOST",
        value: "0.0.0.0",
        chatd: ("CHATD_HTTP__HOST", "127.0.0.2"),
        toml: "[http]\nhost = \"127.0.0.3\"\n",
        read: |s| s.http.host.clone(),
    },
    Original {
        variable: "SOCK_HTTP_PORT",
        value: "7001",
        chatd: ("CHATD_HTTP__PORT", "7002"),
        toml: "[http]\nport = 7003\n",
        read: |s| s.http.port.to_string(),
    },
    Original {
        variable: "SOCK_REDIS_HOST",
        value: "redis-sock",
        chatd: ("CHATD_REDIS__HOST", "redis-chatd"),
        toml: "[redis]\nhost = \"redis-toml\"\n",
        read: |s| s.redis.host.clone().unwrap_or_default(),
    },
    Original {
        variable: "SOCK_REDIS_PORT",
        value: "6381",
        chatd: ("CHATD_REDIS__PORT", "6382"),
        toml: "[redis]\nport = 6383\n",
        read: |s| s.redis.port.map(|p| p.to_string()).unwrap_or_default(),
    },
    Original {
        variable: "SOCK_REDIS_PREFIX",
        value: "sock-prefix",
        chatd: ("CHATD_REDIS__PREFIX", "chatd-prefix"),
        toml: "[redis]\nprefix = \"toml-prefix\"\n",
        read: |s| s.redis.prefix.clone(),
    },
    Original {
        variable: "SOCK_JWT_ALGORITHM",
        value: "HS512",
        chatd: ("CHATD_JWT__ALGORITHM", "HS384"),
        toml: "[jwt]\nalgorithm = \"RS256\"\n",
        read: |s| s.jwt.algorithm.clone(),
    },
    Original {
        variable: "SOCK_JWT_HEADER",
        value: "X-Sock-Token",
        chatd: ("CHATD_JWT__HEADER", "X-Chatd-Token"),
        toml: "[jwt]\nheader = \"X-Toml-Token\"\n",
        read: |s| s.jwt.header.clone(),
    },
    Original {
        variable: "SOCK_JWT_SECRET",
        value: "sock-secret",
        chatd: ("CHATD_JWT__SECRET", "chatd-secret"),
        toml: "[jwt]\nsecret = \"toml-secret\"\n",
        read: |s| secret(s).unwrap_or_default(),
    },
    Original {
        variable: "SOCK_API_URL",
        value: "http://platform.sock:3000/",
        chatd: ("CHATD_PLATFORM__API_URL", "http://platform.chatd:3000/"),
        toml: "[platform]\napi_url = \"http://platform.toml:3000/\"\n",
        read: |s| s.platform.api_url.clone().unwrap_or_default(),
    },
    Original {
        variable: "SOCK_API_USER_AGENT",
        value: "Sock-Agent/1.0",
        chatd: ("CHATD_PLATFORM__USER_AGENT", "Chatd-Agent/1.0"),
        toml: "[platform]\nuser_agent = \"Toml-Agent/1.0\"\n",
        read: |s| s.platform.user_agent.clone(),
    },
];

#[test]
fn every_original_variable_lands_in_its_setting() {
    assert_eq!(ORIGINALS.len(), 12, "the original had twelve SOCK_* variables");
    for original in ORIGINALS {
        jailed(|jail| {
            jail.set_env(original.variable, original.value);
            let settings = Settings::load(None)?;
            assert_eq!((original.read)(&settings), original.value, "{}", original.variable);
            Ok(())
        });
    }
}

#[test]
fn every_original_variable_wins_over_chatd_variables_and_the_toml_file() {
    for original in ORIGINALS {
        jailed(|jail| {
            jail.create_file("chatd.toml", original.toml)?;
            let from_toml = (original.read)(&Settings::load(None)?);
            assert_ne!(from_toml, original.value, "{}: the file sets the key", original.variable);

            jail.set_env(original.chatd.0, original.chatd.1);
            let from_chatd = (original.read)(&Settings::load(None)?);
            assert_eq!(from_chatd, original.chatd.1, "{} beats the file", original.chatd.0);

            jail.set_env(original.variable, original.value);
            let settings = Settings::load(None)?;
            assert_eq!((original.read)(&settings), original.value, "{} wins", original.variable);
            Ok(())
        });
    }
}

#[test]
fn an_original_deployments_environment_configures_everything_at_once() {
    jailed(|jail| {
        for original in ORIGINALS {
            jail.set_env(original.variable, original.value);
        }
        let settings = Settings::load(None)?;
        for original in ORIGINALS {
            assert_eq!((original.read)(&settings), original.value, "{}", original.variable);
        }
        assert_eq!(redis_url(&settings).as_deref(), Some("redis://redis-sock:6381"));
        Ok(())
    });
}

#[test]
fn node_env_sets_the_environment_unless_sock_env_is_set() {
    jailed(|jail| {
        jail.set_env("NODE_ENV", "production");
        assert_eq!(Settings::load(None)?.env, Environment::Production);

        jail.set_env("SOCK_ENV", "development");
        assert_eq!(Settings::load(None)?.env, Environment::Development, "SOCK_ENV wins");
        Ok(())
    });
    jailed(|jail| {
        jail.create_file("chatd.toml", "env = \"development\"\n")?;
        jail.set_env("NODE_ENV", "production");
        assert_eq!(Settings::load(None)?.env, Environment::Production, "NODE_ENV beats the file");

        jail.set_env("CHATD_ENV", "development");
        assert_eq!(Settings::load(None)?.env, Environment::Development, "CHATD_ENV beats NODE_ENV");
        Ok(())
    });
}

#[test]
fn an_environment_other_than_development_or_production_is_refused() {
    jailed(|jail| {
        jail.set_env("NODE_ENV", "staging");
        let error = load_error(Settings::load(None));
        assert!(error.contains("staging"), "{error}");
        Ok(())
    });
}

#[test]
fn redis_host_or_port_alone_selects_redis() {
    jailed(|jail| {
        jail.set_env("SOCK_REDIS_HOST", "redis.internal");
        assert_eq!(redis_url(&Settings::load(None)?).as_deref(), Some("redis://redis.internal:6379"));
        Ok(())
    });
    jailed(|jail| {
        jail.set_env("SOCK_REDIS_PORT", "6380");
        assert_eq!(redis_url(&Settings::load(None)?).as_deref(), Some("redis://localhost:6380"));
        Ok(())
    });
    jailed(|jail| {
        jail.set_env("SOCK_REDIS_PREFIX", "only-a-prefix");
        assert_eq!(redis_url(&Settings::load(None)?), None, "a prefix alone does not select Redis");
        Ok(())
    });
}

#[test]
fn redis_url_wins_over_host_and_port() {
    jailed(|jail| {
        jail.create_file("chatd.toml", "[redis]\nurl = \"redis://:pw@cache.internal:7000/2\"\n")?;
        jail.set_env("SOCK_REDIS_HOST", "redis.internal");
        jail.set_env("SOCK_REDIS_PORT", "6380");
        let settings = Settings::load(None)?;
        assert_eq!(redis_url(&settings).as_deref(), Some("redis://:pw@cache.internal:7000/2"));
        Ok(())
    });
    jailed(|jail| {
        jail.set_env("CHATD_REDIS__URL", "unix:///run/redis.sock");
        assert_eq!(redis_url(&Settings::load(None)?).as_deref(), Some("unix:///run/redis.sock"));
        Ok(())
    });
}

#[test]
fn a_named_config_file_must_exist_but_the_default_one_may_be_absent() {
    jailed(|jail| {
        assert!(Settings::load(None).is_ok(), "no chatd.toml is fine");

        let error = load_error(Settings::load(Some(Path::new("missing.toml"))));
        assert!(error.contains("missing.toml"), "{error}");

        jail.create_file("chatd.toml", "[http]\nport = 4001\n")?;
        jail.create_file("other.toml", "[http]\nport = 4002\n")?;
        let named = Settings::load(Some(Path::new("other.toml")))?;
        assert_eq!(named.http.port, 4002, "a named file replaces chatd.toml, which is not read");
        let absolute = Settings::load(Some(&jail.directory().join("other.toml")))?;
        assert_eq!(absolute.http.port, 4002);
        Ok(())
    });
}

#[test]
fn chatd_config_is_not_a_setting() {
    // `CHATD_CONFIG` names the file (read by the command line), so the CHATD_* layer skips it
    // instead of refusing it as an unknown key.
    jailed(|jail| {
        jail.set_env("CHATD_CONFIG", "/somewhere/chatd.toml");
        assert_eq!(Settings::load(None)?.http.port, 3005);
        Ok(())
    });
}

#[test]
fn unknown_keys_are_refused() {
    jailed(|jail| {
        jail.create_file("chatd.toml", "[http]\nprot = 4000\n")?;
        let error = load_error(Settings::load(None));
        assert!(error.contains("prot"), "{error}");
        Ok(())
    });
    jailed(|jail| {
        jail.create_file("chatd.toml", "[jwt]\nsecret = \"s\"\n[jtw]\nsecret = \"s\"\n")?;
        let error = load_error(Settings::load(None));
        assert!(error.contains("jtw"), "{error}");
        Ok(())
    });
    jailed(|jail| {
        jail.create_file("chatd.toml", "debug = true\n")?;
        let error = load_error(Settings::load(None));
        assert!(error.contains("debug"), "{error}");
        Ok(())
    });
    jailed(|jail| {
        jail.set_env("CHATD_HTTP__PROT", "4000");
        let error = load_error(Settings::load(None));
        assert!(error.contains("prot"), "{error}");
        Ok(())
    });
}

#[test]
fn values_of_the_wrong_type_are_refused() {
    jailed(|jail| {
        jail.set_env("SOCK_HTTP_PORT", "http");
        let error = load_error(Settings::load(None));
        assert!(error.to_lowercase().contains("http.port"), "{error}");
        Ok(())
    });
    jailed(|jail| {
        jail.set_env("CHATD_HTTP__PORT", "70000");
        assert!(Settings::load(None).is_err(), "70000 is not a port");
        Ok(())
    });
    jailed(|jail| {
        jail.set_env("CHATD_LOG__FORMAT", "xml");
        let error = load_error(Settings::load(None));
        assert!(error.contains("xml"), "{error}");
        Ok(())
    });
}

#[test]
fn numeric_looking_values_of_text_settings_stay_text() {
    jailed(|jail| {
        jail.set_env("SOCK_JWT_SECRET", "12345");
        jail.set_env("SOCK_DOMAIN_HANDLE", "42");
        let settings = Settings::load(None)?;
        assert_eq!(secret(&settings).as_deref(), Some("12345"));
        assert_eq!(settings.chat.handle, "42");

        // The secret is used exactly as written: tokens signed with "12345" verify.
        let deps = Dependencies::from_settings(&settings).unwrap();
        assert_eq!(deps.verifier.verify(&hs256_token("12345", 7)), Ok(user(7)));
        Ok(())
    });
    jailed(|jail| {
        // Values figment would otherwise read as numbers, booleans, lists or quoted strings are
        // kept verbatim: leading zeros, a trailing ".0", brackets and quotes all matter in a secret.
        let verbatim = [
            ("CHATD_JWT__SECRET", "007"),
            ("SOCK_REDIS_PREFIX", "1.50"),
            ("SOCK_JWT_HEADER", "true"),
            ("SOCK_API_USER_AGENT", "[bot]"),
            ("CHATD_JWT__USER_CLAIM", "\"uid\""),
            ("SOCK_HTTP_HOST", "10"),
            ("CHATD_LOG__FILTER", "1e3"),
            ("CHATD_CHAT__TENANTS__LOCALHOST", "7"),
        ];
        for (variable, value) in verbatim {
            jail.set_env(variable, value);
        }
        let settings = Settings::load(None)?;
        assert_eq!(secret(&settings).as_deref(), Some("007"));
        assert_eq!(settings.redis.prefix, "1.50");
        assert_eq!(settings.jwt.header, "true");
        assert_eq!(settings.platform.user_agent, "[bot]");
        assert_eq!(settings.jwt.user_claim, "\"uid\"");
        assert_eq!(settings.http.host, "10");
        assert_eq!(settings.log.filter, "1e3");
        assert_eq!(settings.chat.tenants.get("localhost").map(String::as_str), Some("7"));
        Ok(())
    });
    jailed(|jail| {
        jail.set_env("SOCK_JWT_SECRET", " padded secret ");
        assert_eq!(secret(&Settings::load(None)?).as_deref(), Some(" padded secret "));
        Ok(())
    });
}

#[test]
fn numeric_settings_still_read_numbers_from_the_environment() {
    jailed(|jail| {
        jail.set_env("CHATD_HTTP__WORKERS", "4");
        jail.set_env("CHATD_REDIS__CONNECT_TIMEOUT_MS", "800");
        jail.set_env("CHATD_CHAT__MAX_TEXT_CHARS", "500");
        jail.set_env("CHATD_PLATFORM__CACHE_TTL_SECONDS", "120");
        jail.set_env("CHATD_PLATFORM__CACHE_STALE_SECONDS", "0");
        let settings = Settings::load(None)?;
        assert_eq!(settings.http.workers, Some(4));
        assert_eq!(settings.redis.connect_timeout_ms, 800);
        assert_eq!(settings.chat.max_text_chars, 500);
        assert_eq!(settings.platform.cache_ttl_seconds, 120);
        assert_eq!(settings.platform.cache_stale_seconds, 0);
        Ok(())
    });
}

#[test]
fn the_tenants_table_loads() {
    jailed(|jail| {
        jail.create_file(
            "chatd.toml",
            r#"
                [chat]
                handle = "main"

                [chat.tenants]
                "chat.example.com" = "example"
                "Chat.Other.org" = "other"
            "#,
        )?;
        let settings = Settings::load(None)?;
        let expected: BTreeMap<String, String> =
            [("chat.example.com".to_owned(), "example".to_owned()), ("Chat.Other.org".to_owned(), "other".to_owned())]
                .into();
        assert_eq!(settings.chat.tenants, expected);
        assert_eq!(settings.chat.handle, "main");

        let deps = Dependencies::from_settings(&settings).unwrap();
        assert!(startup::chat_api(&settings, deps).is_ok());
        Ok(())
    });
    jailed(|jail| {
        // From the environment, the whole table as one inline-table value (host names hold dots,
        // which a variable name cannot).
        jail.set_env("CHATD_CHAT__TENANTS", r#"{"chat.example.com" = "example", "localhost" = "local"}"#);
        let settings = Settings::load(None)?;
        assert_eq!(settings.chat.tenants.get("chat.example.com").map(String::as_str), Some("example"));
        assert_eq!(settings.chat.tenants.get("localhost").map(String::as_str), Some("local"));
        Ok(())
    });
}

#[test]
fn the_example_file_loads_and_lists_the_defaults() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../chatd.example.toml");
    jailed(|_| {
        let example: Settings = Settings::figment(Some(&path)).extract()?;
        let defaults = Settings::default();
        // The file spells out every default, so it must load to exactly the built-in settings.
        assert_eq!(format!("{example:?}"), format!("{defaults:?}"));
        assert_eq!(example.http.port, 3005);
        assert_eq!(example.chat.handle, "myplatform");
        assert_eq!(secret(&example), None, "the example's secret is commented out");
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Start-up rules
// ---------------------------------------------------------------------------------------------

fn production() -> Settings {
    Settings { env: Environment::Production, ..Settings::default() }
}

#[test]
fn production_refuses_to_start_without_a_jwt_secret() {
    let error = startup_error(Dependencies::from_settings(&production()));
    assert!(error.contains("jwt.secret"), "{error}");
    assert!(error.contains("CHATD_JWT__SECRET"), "{error}");
    assert!(error.contains("SOCK_JWT_SECRET"), "{error}");

    for algorithm in ["HS384", "HS512"] {
        let mut settings = production();
        settings.jwt.algorithm = algorithm.into();
        let error = startup_error(Dependencies::from_settings(&settings));
        assert!(error.contains("jwt.secret") && error.contains(algorithm), "{error}");
    }

    let mut settings = production();
    settings.jwt.secret = Some(SecretString::from("production-secret"));
    let deps = Dependencies::from_settings(&settings).unwrap();
    assert_eq!(deps.verifier.verify(&hs256_token("production-secret", 3)), Ok(user(3)));
    assert!(deps.verifier.verify(&hs256_token(DEVELOPMENT_JWT_SECRET, 3)).is_err());
}

#[test]
fn production_from_the_environment_refuses_to_start_without_a_secret() {
    jailed(|jail| {
        jail.set_env("SOCK_ENV", "production");
        let settings = Settings::load(None)?;
        let error = startup_error(Dependencies::from_settings(&settings));
        assert!(error.contains("jwt.secret"), "{error}");

        jail.set_env("SOCK_JWT_SECRET", "configured");
        let settings = Settings::load(None)?;
        assert!(Dependencies::from_settings(&settings).is_ok());
        Ok(())
    });
}

#[test]
fn production_refuses_an_empty_secret() {
    let mut settings = production();
    settings.jwt.secret = Some(SecretString::from(""));
    let error = startup_error(Dependencies::from_settings(&settings));
    assert!(error.contains("jwt.secret"), "{error}");
}

#[test]
fn development_without_a_secret_uses_the_development_secret() {
    let settings = Settings::default();
    assert_eq!(settings.env, Environment::Development);
    let deps = Dependencies::from_settings(&settings).unwrap();
    assert_eq!(deps.verifier.verify(&hs256_token(DEVELOPMENT_JWT_SECRET, 388_636)), Ok(user(388_636)));
    assert!(deps.verifier.verify(&hs256_token("some-other-secret", 388_636)).is_err());
    assert!(startup::chat_api(&settings, deps).is_ok());
}

#[test]
fn a_configured_secret_replaces_the_development_secret_in_development() {
    let mut settings = Settings::default();
    settings.jwt.secret = Some(SecretString::from("mine"));
    let deps = Dependencies::from_settings(&settings).unwrap();
    assert_eq!(deps.verifier.verify(&hs256_token("mine", 1)), Ok(user(1)));
    assert!(deps.verifier.verify(&hs256_token(DEVELOPMENT_JWT_SECRET, 1)).is_err());
}

#[test]
fn the_user_claim_setting_picks_the_claim() {
    let mut settings = Settings::default();
    settings.jwt.user_claim = "sub".into();
    let deps = Dependencies::from_settings(&settings).unwrap();
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "sub": "12", "user_id": 99 }),
        &EncodingKey::from_secret(DEVELOPMENT_JWT_SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(deps.verifier.verify(&token), Ok(user(12)));
}

#[test]
fn the_topics_claim_setting_turns_on_topic_access_control() {
    let mut settings = Settings::default();
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "user_id": 12, "topics": [42] }),
        &EncodingKey::from_secret(DEVELOPMENT_JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let other_topic = ChatTarget::Topic(TopicId::new(43).unwrap());
    let open = Dependencies::from_settings(&settings).unwrap().verifier.verify(&token).unwrap();
    assert_eq!(open.check(other_topic), Ok(()));

    settings.jwt.topics_claim = " topics ".into();
    let granted = Dependencies::from_settings(&settings).unwrap().verifier.verify(&token).unwrap();
    assert_eq!(granted.check(ChatTarget::Topic(TopicId::new(42).unwrap())), Ok(()));
    assert_eq!(granted.check(other_topic), Err(DomainError::TopicForbidden(TopicId::new(43).unwrap())));
}

#[test]
fn a_header_limit_outside_its_range_is_refused() {
    for limit in [1023, 65537] {
        let mut settings = Settings::default();
        settings.http.header_limit_bytes = limit;
        let deps = Dependencies::from_settings(&settings).unwrap();
        let error = startup_error(startup::chat_api(&settings, deps));
        assert!(error.contains("http.header_limit_bytes"), "{error}");
    }
}

#[test]
fn an_invalid_chat_handle_is_refused() {
    let mut settings = Settings::default();
    settings.chat.handle = "a:b".into();
    let deps = Dependencies::from_settings(&settings).unwrap();
    let error = startup_error(startup::chat_api(&settings, deps));
    assert!(error.contains("chat.handle"), "{error}");
}

#[test]
fn an_invalid_tenant_handle_names_its_host() {
    let mut settings = Settings::default();
    settings.chat.tenants.insert("chat.example.com".into(), "bad handle".into());
    let deps = Dependencies::from_settings(&settings).unwrap();
    let error = startup_error(startup::chat_api(&settings, deps));
    assert!(error.contains("chat.tenants.chat.example.com"), "{error}");
}

#[test]
fn paging_and_text_limits_are_checked() {
    for (max_per_page, max_text_chars, setting) in
        [(0, 4000, "chat.max_per_page"), (1001, 4000, "chat.max_per_page"), (100, 0, "chat.max_text_chars")]
    {
        let mut settings = Settings::default();
        settings.chat.max_per_page = max_per_page;
        settings.chat.max_text_chars = max_text_chars;
        let deps = Dependencies::from_settings(&settings).unwrap();
        let error = startup_error(startup::chat_api(&settings, deps));
        assert!(error.contains(setting), "{error}");
    }
}

#[test]
fn an_invalid_token_header_is_refused() {
    let mut settings = Settings::default();
    settings.jwt.header = "X Auth Token".into();
    let deps = Dependencies::from_settings(&settings).unwrap();
    let error = startup_error(startup::chat_api(&settings, deps));
    assert!(error.contains("jwt.header"), "{error}");
}

#[test]
fn an_unknown_algorithm_is_refused() {
    let mut settings = Settings::default();
    settings.jwt.algorithm = "none".into();
    let error = startup_error(Dependencies::from_settings(&settings));
    assert!(error.contains("jwt.algorithm"), "{error}");
}

#[test]
fn public_key_algorithms_need_a_public_key() {
    for env in [Environment::Development, Environment::Production] {
        for algorithm in ["RS256", "PS256", "ES256", "EdDSA"] {
            let mut settings = Settings { env, ..Settings::default() };
            settings.jwt.algorithm = algorithm.into();
            let error = startup_error(Dependencies::from_settings(&settings));
            assert!(error.contains("public_key") && error.contains(algorithm), "{env:?} {algorithm}: {error}");
            assert!(!error.contains("jwt.secret"), "no secret is needed for {algorithm}: {error}");
        }
    }
}

#[test]
fn a_missing_public_key_file_is_refused_by_name() {
    let mut settings = production();
    settings.jwt.algorithm = "RS256".into();
    settings.jwt.public_key_file = Some(PathBuf::from("/nonexistent/chatd/jwt.pem"));
    let error = startup_error(Dependencies::from_settings(&settings));
    assert!(error.contains("jwt.public_key_file"), "{error}");
    assert!(error.contains("/nonexistent/chatd/jwt.pem"), "{error}");
}

#[test]
fn hmac_algorithms_do_not_read_a_public_key_file() {
    let mut settings = production();
    settings.jwt.algorithm = "HS256".into();
    settings.jwt.secret = Some("a-real-secret".into());
    settings.jwt.public_key_file = Some(PathBuf::from("/nonexistent/chatd/jwt.pem"));
    assert!(Dependencies::from_settings(&settings).is_ok());
}

/// The Ed25519 key pair of RFC 8410, §10.3 and §10.1.
const ED25519_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC
-----END PRIVATE KEY-----
";
const ED25519_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=
-----END PUBLIC KEY-----
";

fn eddsa_token(user_id: u64) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        &json!({ "user_id": user_id }),
        &EncodingKey::from_ed_pem(ED25519_PRIVATE_PEM.as_bytes()).unwrap(),
    )
    .unwrap()
}

#[test]
fn a_public_key_is_read_inline_or_from_a_file_and_inline_wins() {
    jailed(|jail| {
        jail.create_file("jwt.pem", ED25519_PUBLIC_PEM)?;
        jail.set_env("SOCK_ENV", "production");
        jail.set_env("SOCK_JWT_ALGORITHM", "EdDSA");
        jail.set_env("CHATD_JWT__PUBLIC_KEY_FILE", "jwt.pem");
        let settings = Settings::load(None)?;
        assert_eq!(settings.jwt.public_key_file.as_deref(), Some(Path::new("jwt.pem")));
        let deps = Dependencies::from_settings(&settings).unwrap();
        assert_eq!(deps.verifier.verify(&eddsa_token(5)), Ok(user(5)), "production needs no secret for EdDSA");
        assert!(deps.verifier.verify(&hs256_token(DEVELOPMENT_JWT_SECRET, 5)).is_err());
        Ok(())
    });

    let mut settings = production();
    settings.jwt.algorithm = "EdDSA".into();
    settings.jwt.public_key = Some(ED25519_PUBLIC_PEM.into());
    settings.jwt.public_key_file = Some(PathBuf::from("/nonexistent/chatd/jwt.pem"));
    let deps = Dependencies::from_settings(&settings).unwrap();
    assert_eq!(deps.verifier.verify(&eddsa_token(6)), Ok(user(6)), "the inline key is used, the file not read");
}

#[test]
fn a_private_key_in_place_of_the_public_key_is_refused() {
    let mut settings = Settings::default();
    settings.jwt.algorithm = "EdDSA".into();
    settings.jwt.public_key = Some(ED25519_PRIVATE_PEM.into());
    let error = startup_error(Dependencies::from_settings(&settings));
    assert!(error.contains("private key"), "{error}");
}

#[actix_web::test]
async fn redis_settings_build_a_store_without_a_running_redis() {
    jailed(|jail| {
        // Nothing listens on port 1: connections are made lazily, on first use.
        jail.set_env("SOCK_REDIS_PORT", "1");
        let settings = Settings::load(None)?;
        assert_eq!(redis_url(&settings).as_deref(), Some("redis://localhost:1"));
        assert!(Dependencies::from_settings(&settings).is_ok());
        Ok(())
    });

    let mut settings = Settings::default();
    settings.redis.url = Some(SecretString::from("not a redis url"));
    let error = startup_error(Dependencies::from_settings(&settings));
    assert!(error.contains("redis.url"), "{error}");
}

#[actix_web::test]
async fn the_profiles_file_feeds_the_built_in_directory() {
    let mut profiles = None;
    jailed(|jail| {
        jail.create_file(
            "profiles.json",
            r#"{"users": [{"id": 1, "username": "alice", "avatar": "a.png"}], "topics": [{"id": 42, "title": "Launch"}]}"#,
        )?;
        jail.set_env("CHATD_PLATFORM__PROFILES_FILE", "profiles.json");
        let settings = Settings::load(None)?;
        profiles = Some(Dependencies::from_settings(&settings).unwrap().adapters.directory);
        Ok(())
    });
    let directory = profiles.unwrap();
    let users = directory.users(&[UserId::new(1).unwrap(), UserId::new(2).unwrap()]).await;
    assert_eq!(users[&UserId::new(1).unwrap()], json!({"id": 1, "username": "alice", "avatar": "a.png"}));
    assert_eq!(users[&UserId::new(2).unwrap()], json!({"id": 2, "username": "user-2"}));
    let topic = chat_domain::TopicId::new(42).unwrap();
    let topics = directory.topics(&[topic, chat_domain::TopicId::new(7).unwrap()]).await;
    assert_eq!(topics[&topic], json!({"id": 42, "title": "Launch"}));

    let mut settings = Settings::default();
    settings.platform.profiles_file = Some(PathBuf::from("/nonexistent/chatd/profiles.json"));
    let error = startup_error(Dependencies::from_settings(&settings));
    assert!(error.contains("/nonexistent/chatd/profiles.json"), "{error}");
}

#[actix_web::test]
async fn the_platform_api_url_must_be_an_http_url() {
    let mut settings = Settings::default();
    settings.platform.api_url = Some("http://localhost:3000/".into());
    assert!(Dependencies::from_settings(&settings).is_ok());

    settings.platform.api_url = Some("localhost:3000".into());
    let error = startup_error(Dependencies::from_settings(&settings));
    assert!(error.contains("platform.api_url"), "{error}");
}

#[actix_web::test]
async fn application_build_binds_and_applies_the_rules() {
    let mut settings = Settings::default();
    settings.http.host = "127.0.0.1".into();
    settings.http.port = 0;
    let application = Application::build(&settings).unwrap();
    assert_ne!(application.port(), 0, "port 0 picks a free port");

    let mut settings = production();
    settings.http.host = "127.0.0.1".into();
    settings.http.port = 0;
    let error = startup_error(Application::build(&settings));
    assert!(error.contains("jwt.secret"), "{error}");

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut settings = Settings::default();
    settings.http.host = "127.0.0.1".into();
    settings.http.port = taken.local_addr().unwrap().port();
    let error = startup_error(Application::build(&settings));
    assert!(error.contains("cannot listen on 127.0.0.1:"), "{error}");
}

#[actix_web::test]
async fn cors_origins_must_be_origins() {
    let mut settings = Settings::default();
    settings.http.host = "127.0.0.1".into();
    settings.http.port = 0;
    settings.http.cors_origins = vec!["https://app.example.com/chat".into()];
    let error = startup_error(Application::build(&settings));
    assert!(error.contains("http.cors_origins"), "{error}");
    settings.http.cors_origins = vec!["https://app.example.com".into(), "*".into()];
    let error = startup_error(Application::build(&settings));
    assert!(error.contains("http.cors_origins"), "{error}");
}

#[test]
fn a_tenant_s_own_identity_comes_from_the_environment_as_text() {
    jailed(|jail| {
        jail.set_env("CHATD_CHAT__TENANTS__CHAT-B", "beta");
        jail.set_env("CHATD_TENANTS__BETA__JWT__SECRET", "00042");
        jail.set_env("CHATD_JWT__TENANT_CLAIM", "site");
        let settings = Settings::load(None)?;
        let beta = &settings.tenants["beta"];
        assert_eq!(
            beta.jwt.as_ref().and_then(|jwt| jwt.secret.as_ref()).map(|s| s.expose_secret().to_owned()),
            Some("00042".into())
        );
        assert_eq!(settings.jwt.tenant_claim, "site");
        assert!(startup::chat_api(&settings, Dependencies::from_settings(&settings).unwrap()).is_ok());
        Ok(())
    });
}

#[test]
fn a_tenant_s_identity_must_be_complete_and_for_a_tenant_of_this_chatd() {
    use chatd::settings::{JwtConfig, TenantConfig};
    let with_tenant = |handle: &str, jwt: JwtConfig| {
        let mut settings = Settings::default();
        settings.chat.tenants.insert("platform-b.example".into(), "beta".into());
        settings.tenants.insert(handle.into(), TenantConfig { jwt: Some(jwt), platform: None });
        let dependencies = Dependencies::from_settings(&settings).unwrap();
        startup::chat_api(&settings, dependencies).map(|_| ())
    };
    let keyed = || JwtConfig { secret: Some("beta-secret".into()), ..JwtConfig::default() };
    assert!(with_tenant("beta", keyed()).is_ok());
    let error = startup_error(with_tenant("gamma", keyed()));
    assert!(error.contains("tenants.gamma: no tenant has this handle"), "{error}");
    // No development secret for a tenant's own identity: it must bring its key.
    let error = startup_error(with_tenant("beta", JwtConfig::default()));
    assert!(error.contains("tenants.beta.jwt.secret is required"), "{error}");
    let error = startup_error(with_tenant("beta", JwtConfig { header: "X-Other".into(), ..keyed() }));
    assert!(error.contains("tenants.beta.jwt.header"), "{error}");
    let error = startup_error(with_tenant("beta", JwtConfig { algorithm: "HS999".into(), ..keyed() }));
    assert!(error.contains("tenants.beta.jwt.algorithm"), "{error}");
}

#[test]
fn redis_cluster_seeds_come_from_a_list_and_its_settings_are_checked() {
    jailed(|jail| {
        jail.set_env("CHATD_REDIS__CLUSTER", r#"["redis://10.0.0.1:7000","redis://10.0.0.2:7000"]"#);
        jail.set_env("CHATD_REDIS__ACK_REPLICAS", "1");
        let settings = Settings::load(None)?;
        assert_eq!(settings.redis.cluster, ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]);
        assert_eq!(settings.redis.ack_replicas, 1);
        assert_eq!(settings.redis.repair_interval_ms, 30_000, "the default");
        Ok(())
    });
    jailed(|jail| {
        jail.create_file("chatd.toml", "[redis]\ncluster = [\"redis://10.0.0.1:7000\"]\nrepair_interval_ms = 0\n")?;
        let settings = Settings::load(None)?;
        let error = startup_error(startup::Dependencies::from_settings(&settings));
        assert!(error.contains("redis.repair_interval_ms"), "{error}");
        Ok(())
    });
    jailed(|jail| {
        jail.create_file("chatd.toml", "[redis]\ncluster = [\"no-scheme\"]\n")?;
        let settings = Settings::load(None)?;
        let error = startup_error(startup::Dependencies::from_settings(&settings));
        assert!(error.contains("redis.cluster"), "{error}");
        Ok(())
    });
}
