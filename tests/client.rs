//! The Composio client against the emulator over real HTTP.

mod support;

use composio_schema_cache::cache::Slug;
use composio_schema_cache::composio::{ApiKey, ComposioClient, TransportKind, UpstreamError};
use composio_schema_cache::emulator::{Fault, FaultKind, FaultTarget, LimitHeaders, RateLimit};
use std::time::{Duration, Instant};
use support::{client, client_config, emulator};

/// A call that must end by itself: a hang fails the test by assertion.
async fn bounded<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("the call ended by itself")
}

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
        headers: LimitHeaders::Never,
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
    for kind in [FaultKind::Reset, FaultKind::Truncated] {
        emu.set_fault("linkedin", Fault::always(kind, FaultTarget::Tools));
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
    // The message says which server did not answer, never an empty URL.
    let message = err.to_string();
    assert!(
        message.contains(&format!("http://127.0.0.1:{port}")) && !message.contains("()"),
        "{message}"
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_is_not_waited_for() {
    let emu = emulator().await;
    // Every call is over the limit, and the window is a minute long.
    emu.set_rate_limit(Some(RateLimit::per_minute(0)));
    let c = client(&emu); // retry budget: 2 s
    let err = bounded(c.get_toolkit(&slug("linkedin"))).await.unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert_eq!(
        emu.stats().requests,
        1,
        "a 60 s Retry-After exceeds the budget: no retry"
    );
}

/// The client with a shared rate limit (tests' default has none).
fn limited_client(
    emu: &composio_schema_cache::emulator::Emulator,
    rps: u32,
    burst: u32,
) -> ComposioClient {
    let mut config = client_config(emu);
    config.max_rps = Some(rps);
    config.burst = burst;
    ComposioClient::new(config).unwrap()
}

#[tokio::test]
async fn a_429_spends_no_error_retry() {
    let emu = emulator().await;
    // Three 429s, then two 502s, then the answer: five retries in all,
    // with only two error retries allowed.
    for _ in 0..3 {
        emu.push_fault(
            "linkedin",
            Fault::times(
                FaultKind::throttled(Duration::from_millis(20)),
                FaultTarget::Tools,
                1,
            ),
        );
    }
    emu.push_fault(
        "linkedin",
        Fault::times(FaultKind::Status(502), FaultTarget::Tools, 2),
    );
    let mut config = client_config(&emu);
    config.max_retries = 2;
    let c = ComposioClient::new(config).unwrap();
    let tools = bounded(c.list_tools(&slug("linkedin"))).await.unwrap();
    assert_eq!(tools.len(), 4);
    let stats = c.stats();
    assert_eq!((stats.throttled, stats.retries), (3, 5));
}

#[tokio::test]
async fn a_retry_after_pauses_every_caller() {
    let emu = emulator().await;
    emu.set_fault(
        "github",
        Fault::times(
            FaultKind::throttled(Duration::from_millis(600)),
            FaultTarget::Tools,
            1,
        ),
    );
    let c = limited_client(&emu, 1000, 1000);
    let started = Instant::now();
    let throttled = tokio::spawn({
        let c = c.clone();
        async move { c.list_tools(&slug("github")).await }
    });
    // Let the 429 land, then ask for other toolkits: they wait for the pause.
    support::eventually("the 429", || emu.stats().by_route.get("tools") == Some(&1)).await;
    let slugs = ["linkedin", "firecrawl", "browseai"].map(slug);
    let others = futures::future::join_all(slugs.iter().map(|s| c.get_toolkit(s)));
    for result in bounded(others).await {
        result.unwrap();
    }
    // A lower bound only: a slow machine cannot make it fail.
    assert!(
        started.elapsed() >= Duration::from_millis(550),
        "the others waited out the pause: {:?}",
        started.elapsed()
    );
    bounded(throttled).await.unwrap().unwrap();
    assert_eq!(c.stats().throttled, 1);
}

#[tokio::test]
async fn without_rate_headers_429s_halve_the_rate_and_calls_still_succeed() {
    let emu = emulator().await;
    emu.set_rate_limit(Some(RateLimit {
        max_requests: 5,
        window: Duration::from_millis(250),
        headers: LimitHeaders::Never,
    }));
    let c = limited_client(&emu, 400, 5);
    let names = [
        "linkedin",
        "firecrawl",
        "browseai",
        "perplexityai",
        "googletasks",
    ]
    .map(slug);
    let calls = (0..40).map(|i| c.get_toolkit(&names[i % names.len()]));
    for result in bounded(futures::future::join_all(calls)).await {
        result.unwrap();
    }
    let stats = c.stats();
    assert!(stats.throttled > 0, "the server pushed back");
    let rate = stats.rate.unwrap();
    assert!(rate < 400.0, "the rate came down from the ceiling: {rate}");
}

#[tokio::test]
async fn rate_headers_set_the_rate_just_under_the_server_limit() {
    let emu = emulator().await;
    emu.set_rate_limit(Some(RateLimit {
        max_requests: 20,
        window: Duration::from_millis(1000),
        headers: LimitHeaders::Always,
    }));
    let c = limited_client(&emu, 400, 5);
    for name in ["linkedin", "firecrawl"] {
        bounded(c.get_toolkit(&slug(name))).await.unwrap();
    }
    let rate = c.stats().rate.unwrap();
    assert!((rate - 18.0).abs() < 1e-6, "90 % of 20 per second: {rate}");
    assert_eq!(c.stats().throttled, 0, "learned before any 429");
}

#[tokio::test]
async fn a_malformed_answer_once_is_retried() {
    let emu = emulator().await;
    emu.set_fault(
        "linkedin",
        Fault::times(FaultKind::Malformed, FaultTarget::Tools, 1),
    );
    emu.push_fault(
        "linkedin",
        Fault::times(FaultKind::WrongTypes, FaultTarget::Tools, 1),
    );
    let c = client(&emu);
    assert_eq!(
        bounded(c.list_tools(&slug("linkedin")))
            .await
            .unwrap()
            .len(),
        4
    );
    assert_eq!(c.stats().retries, 2);
}

#[tokio::test]
async fn hostile_retry_after_values_never_panic() {
    for (header, value, gives_up_at_once) in [
        ("retry-after", "1e300", true),
        ("retry-after-ms", "1e300", true),
        ("retry-after", "18446744073709551616", true),
        ("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT", true),
        ("retry-after", "-1", false),
        ("retry-after-ms", "-1", false),
        ("retry-after", "inf", false),
        ("retry-after-ms", "NaN", false),
        ("retry-after", "soon", false),
    ] {
        let emu = emulator().await;
        emu.set_fault(
            "linkedin",
            Fault::times(
                FaultKind::Throttled {
                    header,
                    value: value.into(),
                },
                FaultTarget::Details,
                1,
            ),
        );
        let c = limited_client(&emu, 100, 10);
        let result = bounded(c.get_toolkit(&slug("linkedin"))).await;
        if gives_up_at_once {
            let err = result.unwrap_err();
            assert_eq!(err.status(), Some(429), "{header}: {value}");
            assert_eq!(
                emu.stats().requests,
                1,
                "{header}: {value}: beyond any budget"
            );
        } else {
            // Ignored: a short pause of our own, then the answer.
            result.unwrap_or_else(|e| panic!("{header}: {value}: {e}"));
        }
    }
}

#[tokio::test]
async fn a_429_that_says_retry_now_forever_still_ends_within_the_budget() {
    // Retry-After 0, or a date already past, on every answer: without a
    // pause of our own the call would hammer the server and never end.
    for (header, value) in [
        ("retry-after", "0"),
        ("retry-after-ms", "0"),
        ("retry-after", "Thu, 01 Jan 1970 00:00:00 GMT"),
    ] {
        let emu = emulator().await;
        emu.set_fault(
            "linkedin",
            Fault::always(
                FaultKind::Throttled {
                    header,
                    value: value.into(),
                },
                FaultTarget::Details,
            ),
        );
        let mut config = client_config(&emu);
        config.retry_budget = Duration::from_millis(1000);
        config.max_backoff = Duration::from_secs(10);
        let c = ComposioClient::new(config).unwrap();
        let err = bounded(c.get_toolkit(&slug("linkedin"))).await.unwrap_err();
        assert_eq!(err.status(), Some(429), "{header}: {value}");
        // 50 + 100 + 200 + 400 ms fit in the budget, 800 more do not.
        assert_eq!(emu.stats().requests, 5, "{header}: {value}");
    }
}

#[tokio::test]
async fn a_redirect_is_refused_and_the_key_never_leaves() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let stolen = Arc::new(AtomicUsize::new(0));
    let thief = {
        let stolen = stolen.clone();
        axum::Router::new().fallback(move || {
            stolen.fetch_add(1, Ordering::SeqCst);
            async { "thanks" }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let thief_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, thief).await });
    let emu = emulator().await;
    emu.set_fault(
        "linkedin",
        Fault::always(
            FaultKind::Redirect(format!("http://{thief_addr}/steal?k=1")),
            FaultTarget::Details,
        ),
    );
    let c = client(&emu);
    let err = bounded(c.get_toolkit(&slug("linkedin"))).await.unwrap_err();
    assert!(
        matches!(err, UpstreamError::Redirect { status: 302, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("302") && text.contains("127.0.0.1"), "{text}");
    assert!(
        !text.contains("steal") && !text.contains(&emu.api_key()),
        "{text}"
    );
    assert_eq!(
        stolen.load(Ordering::SeqCst),
        0,
        "the redirect was not followed"
    );
    assert_eq!(emu.stats().requests, 1, "a redirect is not retried");
}

/// An upstream of our own for what the emulator cannot do: a raw reply.
async fn raw_upstream(reply: &'static [u8], then_hold: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(reply).await;
                if then_hold {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

fn client_for(base_url: String, max_body_bytes: usize) -> ComposioClient {
    let mut config =
        composio_schema_cache::composio::ClientConfig::new(base_url, ApiKey::new("k").unwrap());
    config.max_body_bytes = max_body_bytes;
    config.max_retries = 0;
    config.request_timeout = Duration::from_secs(10);
    ComposioClient::new(config).unwrap()
}

#[tokio::test]
async fn a_chunked_body_over_the_cap_is_refused() {
    // No Content-Length: the cap must hold while reading.
    let chunk = "x".repeat(1000);
    let body: String = (0..100)
        .map(|_| format!("{:x}\r\n{chunk}\r\n", chunk.len()))
        .collect::<String>()
        + "0\r\n\r\n";
    let reply = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{body}"
    );
    let base = raw_upstream(Box::leak(reply.into_bytes().into_boxed_slice()), false).await;
    let err = bounded(client_for(base, 10_000).get_toolkit(&slug("linkedin")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, UpstreamError::TooLarge { limit: 10_000, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_huge_declared_length_is_refused_before_reading() {
    // Declares a terabyte, sends a few bytes and holds the line: refusing
    // must not wait for the body, nor reserve memory for it.
    let base = raw_upstream(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000000000000\r\n\r\n{\"items\":",
        true,
    )
    .await;
    let started = Instant::now();
    let err = bounded(client_for(base, 1_000_000).get_toolkit(&slug("linkedin")))
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::TooLarge { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "did not wait for the body"
    );
}

#[tokio::test]
async fn empty_pages_that_keep_naming_cursors_are_stopped() {
    let emu = emulator().await;
    emu.set_fault(
        "linkedin",
        Fault::always(FaultKind::EmptyPages, FaultTarget::Tools),
    );
    let c = client(&emu);
    let err = bounded(c.list_tools(&slug("linkedin"))).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Paging { .. }), "{err:?}");
    assert_eq!(
        emu.stats().by_route["tools"],
        3,
        "stopped after three empty pages"
    );
}

#[tokio::test]
async fn long_upstream_messages_are_cut() {
    let emu = emulator().await;
    emu.set_fault(
        "linkedin",
        Fault::always(FaultKind::LongError(20_000), FaultTarget::Details),
    );
    let mut config = client_config(&emu);
    config.max_retries = 0;
    let err = bounded(
        ComposioClient::new(config)
            .unwrap()
            .get_toolkit(&slug("linkedin")),
    )
    .await
    .unwrap_err();
    let UpstreamError::Status { message, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        message.chars().count(),
        composio_schema_cache::composio::MAX_UPSTREAM_TEXT
    );
    assert!(err.to_string().len() < 1000);
}

/// A toolkit detail padded with JSON whitespace to exactly `len` bytes.
fn detail_of_exactly(len: usize) -> String {
    let detail = r#"{"slug":"linkedin","name":"LinkedIn","meta":{}}"#;
    assert!(detail.len() <= len);
    format!("{detail}{}", " ".repeat(len - detail.len()))
}

#[tokio::test]
async fn a_body_of_exactly_the_cap_is_accepted() {
    // The cap is inclusive, whether the size is declared or counted while
    // reading: a refusal one byte early would fail a legitimate answer.
    let body = detail_of_exactly(1000);
    let declared = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{body}"
    );
    // Chunked in tenths: the running total reaches the cap on the last chunk.
    let chunks: String = body
        .as_bytes()
        .chunks(100)
        .map(|c| format!("{:x}\r\n{}\r\n", c.len(), std::str::from_utf8(c).unwrap()))
        .collect();
    let chunked = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{chunks}0\r\n\r\n"
    );
    for reply in [declared, chunked] {
        let base = raw_upstream(Box::leak(reply.into_bytes().into_boxed_slice()), false).await;
        let detail = bounded(client_for(base, 1000).get_toolkit(&slug("linkedin")))
            .await
            .unwrap();
        assert_eq!(detail.slug, "linkedin");
    }
}

#[tokio::test]
async fn a_5xx_does_not_slow_the_shared_rate() {
    // Only a 429 says "too fast"; a 502 is waited out by its own caller
    // and leaves the pace of every other call alone.
    let emu = emulator().await;
    emu.set_fault(
        "linkedin",
        Fault::times(FaultKind::Status(502), FaultTarget::Details, 1),
    );
    let c = limited_client(&emu, 100, 10);
    bounded(c.get_toolkit(&slug("linkedin"))).await.unwrap();
    let stats = c.stats();
    assert_eq!((stats.retries, stats.throttled), (1, 0));
    assert_eq!(stats.rate, Some(100.0), "still at the ceiling");
}

#[tokio::test]
async fn a_429_without_retry_after_pauses_longer_each_time() {
    // No usable Retry-After: our own pause, 1 s then 2 s. With a 2.5 s
    // budget the second pause does not fit, so the call gives up after two
    // tries, although the server would have answered the fourth.
    let emu = emulator().await;
    for _ in 0..3 {
        emu.push_fault(
            "linkedin",
            Fault::times(
                FaultKind::Throttled {
                    header: "retry-after",
                    value: "soon".into(),
                },
                FaultTarget::Details,
                1,
            ),
        );
    }
    let mut config = client_config(&emu);
    config.max_backoff = Duration::from_secs(10);
    config.retry_budget = Duration::from_millis(2500);
    let c = ComposioClient::new(config).unwrap();
    let err = bounded(c.get_toolkit(&slug("linkedin"))).await.unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert_eq!(emu.stats().requests, 2, "1 s waited, 2 s more refused");
}

#[tokio::test]
async fn a_retry_after_of_exactly_the_budget_is_waited_out() {
    // The budget bounds the time spent waiting: a pause that uses all of
    // it, and no more, is still taken.
    let emu = emulator().await;
    emu.set_fault(
        "linkedin",
        Fault::times(
            FaultKind::throttled(Duration::from_millis(300)),
            FaultTarget::Details,
            1,
        ),
    );
    let mut config = client_config(&emu);
    config.retry_budget = Duration::from_millis(300);
    let c = ComposioClient::new(config).unwrap();
    bounded(c.get_toolkit(&slug("linkedin"))).await.unwrap();
    assert_eq!(emu.stats().requests, 2);
}
