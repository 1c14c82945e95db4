//! The Composio client against the emulator over real HTTP.

mod support;

use composio_schema_cache::cache::Slug;
use composio_schema_cache::composio::{ApiKey, ComposioClient, TransportKind, UpstreamError};
use composio_schema_cache::emulator::{Fault, FaultKind, FaultTarget, RateLimit};
use std::time::Duration;
use support::{client, client_config, emulator};

fn slug(s: &str) -> Slug {
    Slug::parse(s).unwrap()
}

#[tokio::test]
async fn follows_every_page_of_a_large_toolkit() {
    let emu = emulator().await;
    emu.set_page_cap(7);
    let c = client(&emu);
    let tools = c.list_tools(&slug("github")).await.unwrap();
    assert_eq!(tools.len(), 831, "all of github's tools across pages");
    let unique: std::collections::HashSet<_> = tools.iter().map(|t| &t.slug).collect();
    assert_eq!(unique.len(), 831);
    // 831 / 7 = 119 pages, one request each.
    assert_eq!(emu.stats().by_route["tools"], 119);
}

#[tokio::test]
async fn asks_for_the_latest_version_and_never_for_the_important_subset() {
    let emu = emulator().await;
    let c = client(&emu);
    let tools = c.list_tools(&slug("googletasks")).await.unwrap();
    // The base version serves 3/4 of the tools, `important=true` only 3.
    assert_eq!(tools.len(), 14);
    assert!(tools
        .iter()
        .all(|t| t.version.as_deref() == Some("20251201_00")));
}

#[tokio::test]
async fn lists_auth_configs_and_toolkits_across_pages() {
    let emu = emulator().await;
    emu.set_page_cap(2);
    let c = client(&emu);
    let configs = c.list_auth_configs().await.unwrap();
    let mut slugs: Vec<_> = configs.iter().map(|c| c.toolkit.slug.clone()).collect();
    slugs.sort();
    slugs.dedup();
    assert_eq!(
        slugs,
        [
            "browseai",
            "firecrawl",
            "github",
            "googletasks",
            "linkedin",
            "perplexityai"
        ]
    );
    assert!(
        configs.len() > slugs.len(),
        "several configs share a toolkit"
    );
    let toolkits = c.list_toolkits().await.unwrap();
    assert_eq!(toolkits.len(), 7);
    assert!(toolkits
        .iter()
        .all(|t| t.meta.version.is_some() && t.meta.updated_at.is_some()));
    let detail = c.get_toolkit(&slug("browser_tool")).await.unwrap();
    assert_eq!(detail.auth_config_details[0].mode, "NO_AUTH");
}

#[tokio::test]
async fn a_wrong_key_is_a_401_that_never_shows_the_key() {
    let emu = emulator().await;
    let mut config = client_config(&emu);
    config.api_key = ApiKey::new("sk_wrong_but_secret_42").unwrap();
    let c = ComposioClient::new(config).unwrap();
    let err = c.list_auth_configs().await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    let text = format!("{err} {err:?}");
    assert!(!text.contains("sk_wrong_but_secret_42"), "{text}");
    assert!(
        text.contains("request id req_"),
        "keeps the request id: {text}"
    );
    assert_eq!(emu.stats().unauthorized, 1, "401 is not retried");
}

#[tokio::test]
async fn unknown_toolkit_is_a_404_without_retries() {
    let emu = emulator().await;
    let c = client(&emu);
    let err = c.get_toolkit(&slug("no_such_toolkit")).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(emu.stats().by_route["toolkit"], 1);
}

#[tokio::test]
async fn transient_5xx_is_retried_then_succeeds() {
    let emu = emulator().await;
    emu.set_fault(
        "linkedin",
        Fault::times(FaultKind::Status(503), FaultTarget::Tools, 2),
    );
    let c = client(&emu);
    assert_eq!(c.list_tools(&slug("linkedin")).await.unwrap().len(), 4);
    assert_eq!(emu.stats().by_route["tools"], 3);
    assert_eq!(c.stats().retries, 2);
}

#[tokio::test]
async fn permanent_5xx_gives_up_after_the_retry_limit() {
    let emu = emulator().await;
    emu.set_fault(
        "linkedin",
        Fault::always(FaultKind::Status(500), FaultTarget::Details),
    );
    let c = client(&emu);
    let err = c.get_toolkit(&slug("linkedin")).await.unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert_eq!(emu.stats().by_route["toolkit"], 4, "1 try + 3 retries");
}

#[tokio::test]
async fn rate_limit_429_is_waited_out_using_retry_after() {
    let emu = emulator().await;
    emu.set_rate_limit(Some(RateLimit {
        max_requests: 2,
        window: Duration::from_millis(400),
    }));
    let c = client(&emu);
    for name in ["linkedin", "perplexityai", "firecrawl"] {
        c.get_toolkit(&slug(name)).await.unwrap();
    }
    let stats = emu.stats();
    assert!(stats.rate_limited >= 1, "the third call met a 429");
    assert_eq!(stats.by_route["toolkit"], 3 + stats.rate_limited);
}

#[tokio::test]
async fn client_side_rate_limit_spaces_requests() {
    let emu = emulator().await;
    let mut config = client_config(&emu);
    config.max_rps = Some(20);
    config.burst = 10;
    let c = ComposioClient::new(config).unwrap();
    let start = std::time::Instant::now();
    let linkedin = slug("linkedin");
    let calls = (0..30).map(|_| c.get_toolkit(&linkedin));
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    // A burst of 10, then 20 more at 20/s: at least ~0.95 s.
    // A lower bound only: a slow machine cannot make it fail.
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_decode_errors_naming_the_field() {
    let emu = emulator().await;
    let c = client(&emu);
    emu.set_fault(
        "linkedin",
        Fault::always(FaultKind::Malformed, FaultTarget::Tools),
    );
    let err = c.list_tools(&slug("linkedin")).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Decode { .. }), "{err}");
    emu.set_fault(
        "linkedin",
        Fault::always(FaultKind::WrongTypes, FaultTarget::Details),
    );
    let err = c.get_toolkit(&slug("linkedin")).await.unwrap_err();
    assert!(err.to_string().contains("slug"), "names the field: {err}");
}

#[tokio::test]
async fn truncated_bodies_and_resets_are_retried_then_reported() {
    let emu = emulator().await;
    let c = client(&emu);
    emu.set_fault(
        "linkedin",
        Fault::times(FaultKind::Truncated, FaultTarget::Tools, 1),
    );
    assert_eq!(
        c.list_tools(&slug("linkedin")).await.unwrap().len(),
        4,
        "one truncation, then fine"
    );
    emu.set_fault(
        "linkedin",
        Fault::always(FaultKind::Reset, FaultTarget::Tools),
    );
    let err = c.list_tools(&slug("linkedin")).await.unwrap_err();
    assert!(
        matches!(
            err,
            UpstreamError::Transport {
                kind: TransportKind::Interrupted,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn bodies_over_the_cap_are_refused() {
    let emu = emulator().await;
    let mut config = client_config(&emu);
    config.max_body_bytes = 64 * 1024;
    let c = ComposioClient::new(config).unwrap();
    emu.set_fault(
        "linkedin",
        Fault::always(FaultKind::Oversize(100 * 1024), FaultTarget::Details),
    );
    let err = c.get_toolkit(&slug("linkedin")).await.unwrap_err();
    assert!(matches!(err, UpstreamError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn a_slow_answer_times_out() {
    let emu = emulator().await;
    let mut config = client_config(&emu);
    config.request_timeout = Duration::from_millis(200);
    config.max_retries = 1;
    let c = ComposioClient::new(config).unwrap();
    emu.set_fault(
        "linkedin",
        Fault::always(
            FaultKind::Slow(Duration::from_secs(2)),
            FaultTarget::Details,
        ),
    );
    let err = c.get_toolkit(&slug("linkedin")).await.unwrap_err();
    assert!(
        matches!(
            err,
            UpstreamError::Transport {
                kind: TransportKind::Timeout,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = composio_schema_cache::composio::ClientConfig::new(
        format!("http://127.0.0.1:{port}"),
        ApiKey::new("k").unwrap(),
    );
    config.max_retries = 1;
    config.min_backoff = Duration::from_millis(1);
    let err = ComposioClient::new(config)
        .unwrap()
        .list_auth_configs()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            UpstreamError::Transport {
                kind: TransportKind::Connect,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_is_not_waited_for() {
    let emu = emulator().await;
    // Every call is over the limit, and the window is a minute long.
    emu.set_rate_limit(Some(RateLimit {
        max_requests: 0,
        window: Duration::from_secs(60),
    }));
    let c = client(&emu); // retry budget: 2 s
    let started = std::time::Instant::now();
    let err = c.get_toolkit(&slug("linkedin")).await.unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        emu.stats().requests,
        1,
        "a 60 s Retry-After exceeds the budget: no retry"
    );
}
