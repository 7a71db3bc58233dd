//! Threat-model invariants 2 and 3 at the one place requests are sent (`http::HttpClient`): a
//! client's credentials (its token, its own headers such as an API key) go only to its origin,
//! and no redirect is followed. An "attacker" origin records everything that reaches it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use percent_encoding::percent_decode_str;
use proptest::prelude::*;
use provbench::engine::{self, RunOptions};
use provbench::http::{HttpClient, HttpSettings};
use provbench::workload::Workload;
use tokio_util::sync::CancellationToken;

/// Every request that reached a server: its request line and headers.
#[derive(Default)]
struct Seen(Mutex<Vec<(String, HeaderMap)>>);

/// A server on 127.0.0.1:0 that records each request and answers `reply` to it.
async fn serve(reply: fn(&str) -> Response) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .fallback(move |State(seen): State<Arc<Seen>>, req: Request| async move {
            let line = format!("{} {}", req.method(), req.uri());
            seen.0.lock().push((line.clone(), req.headers().clone()));
            reply(&line)
        })
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn ok(_: &str) -> Response {
    StatusCode::OK.into_response()
}

/// A target client at `{target}/scim/v2` with a bearer token and an API key.
fn client_of(target: &str) -> HttpClient {
    let mut headers = HeaderMap::new();
    headers.insert("x-api-key", HeaderValue::from_static("key-0123456789"));
    let client = HttpClient::new(&format!("{target}/scim/v2"), HttpSettings::defaults())
        .unwrap()
        .with_headers(headers);
    client.set_bearer("tok-0123456789").unwrap();
    client
}

/// Whether the client's own credentials came with a request (a URL's userinfo becomes a Basic
/// header of its own: not the client's).
fn credentialed(h: &HeaderMap) -> bool {
    h.get("authorization")
        .is_some_and(|v| v.as_bytes().ends_with(b"tok-0123456789"))
        || h.get("x-api-key").is_some()
}

#[tokio::test]
async fn a_clients_credentials_go_only_to_its_origin_and_base_path() {
    let (target, at_target) = serve(ok).await;
    let (attacker, at_attacker) = serve(ok).await;
    let client = client_of(&target);
    // Relative, absolute under the base, absolute on the origin outside the base (a job's
    // Location naming an admin API, a sibling path, a dot or encoded-slash escape), elsewhere.
    for path in [
        "/Users/1".to_string(),
        format!("{target}/scim/v2/Users/2"),
        format!("{target}/admin/realms/x"),
        format!("{target}/scim/v2x/Users"),
        format!("{target}/scim/v2/..%2F..%2Fadmin"),
        format!("{target}/scim/v2/%2e%2e/x"),
        format!("{attacker}/jobs/1"),
    ] {
        client.call(reqwest::Method::GET, &path, None).await.unwrap();
    }
    let own = at_target.0.lock();
    assert_eq!(own.len(), 6, "{:?}", own.iter().map(|(l, _)| l).collect::<Vec<_>>());
    for (line, h) in own.iter() {
        if line.starts_with("GET /scim/v2/Users/") {
            assert_eq!(h["authorization"], "Bearer tok-0123456789", "{line}");
            assert_eq!(h["x-api-key"], "key-0123456789", "{line}");
        } else {
            assert!(
                !credentialed(h),
                "{line} carried credentials outside the base path: {h:?}"
            );
        }
    }
    let foreign = at_attacker.0.lock();
    assert_eq!(foreign.len(), 1);
    let (line, h) = &foreign[0];
    assert!(!credentialed(h), "{line}: {h:?}");
}

#[tokio::test]
async fn a_requests_secret_headers_go_only_where_the_clients_credentials_go() {
    let (target, at_target) = serve(ok).await;
    let (attacker, at_attacker) = serve(ok).await;
    let client = client_of(&target);
    let mut extras = provbench::http::client::Extras::default();
    let mut secret = HeaderValue::from_static("op-secret-0123456789");
    secret.set_sensitive(true);
    extras.headers.insert("x-op-key", secret);
    extras.headers.insert("x-tenant", HeaderValue::from_static("acme"));
    // A cleanup hook's headers come back from the ledger as text: a registered secret without
    // its mark.
    provbench::redact::register("hook-secret-0123456789");
    extras
        .headers
        .insert("x-hook-key", HeaderValue::from_static("hook-secret-0123456789"));
    for path in [
        "/Users/1".to_string(),
        format!("{target}/admin/x"),
        format!("{attacker}/x"),
    ] {
        client
            .call_with(reqwest::Method::GET, &path, None, &extras)
            .await
            .unwrap();
    }
    let own = at_target.0.lock();
    let (line, h) = &own[0];
    assert!(
        h.get("x-op-key").is_some() && h.get("x-hook-key").is_some(),
        "{line}: {h:?}"
    );
    let elsewhere = own[1..]
        .iter()
        .chain(at_attacker.0.lock().iter())
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(elsewhere.len(), 2);
    for (line, h) in &elsewhere {
        assert!(
            h.get("x-op-key").is_none() && h.get("x-hook-key").is_none(),
            "{line}: {h:?}"
        );
        assert_eq!(h["x-tenant"], "acme", "{line}: a request's plain headers still go");
    }
}

/// The grant of the target's whole origin (job status, audit reads, probe services on the target's
/// origin however their URL is written) is for reads: its credentials go with a GET anywhere on
/// the origin, never with a write there, and never elsewhere.
#[tokio::test]
async fn a_whole_origin_grant_is_for_reads_only() {
    let (target, at_target) = serve(ok).await;
    let (attacker, at_attacker) = serve(ok).await;
    let client = client_of(&target).on_whole_origin().unwrap();
    for (method, url) in [
        (reqwest::Method::GET, format!("{target}/linked/directory/Users/1")),
        (reqwest::Method::POST, format!("{target}/linked/directory/Users")),
        (reqwest::Method::DELETE, format!("{target}/admin/realms/x")),
        (reqwest::Method::GET, format!("{attacker}/jobs/1")),
    ] {
        client.call(method, &url, None).await.unwrap();
    }
    let own = at_target.0.lock();
    assert_eq!(own.len(), 3);
    for (line, h) in own.iter() {
        assert_eq!(credentialed(h), line.starts_with("GET "), "{line}: {h:?}");
    }
    let (line, h) = &at_attacker.0.lock()[0];
    assert!(!credentialed(h), "{line}: {h:?}");
}

/// A piece of a generated absolute URL's path.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("scim".to_string()),
        Just("v2".to_string()),
        Just("v2x".to_string()),
        Just("admin".to_string()),
        Just("Users".to_string()),
        Just("..".to_string()),
        Just("%2e%2e".to_string()),
        Just("%2F".to_string()),
        Just("%252F".to_string()),
        Just("%5C".to_string()),
        Just("..;".to_string()),
        Just("%EF%BC%8E%EF%BC%8E".to_string()),
        Just("".to_string()),
        "[a-z0-9]{1,3}",
    ]
}

/// What a server that decodes, reads `\` as `/` and resolves dot segments routes `path` to.
fn routed(path: &str) -> String {
    reading(path, 3, true, true, true)
}

/// Every way a server may read `path`: decoded 0 to 3 times, fullwidth dots read as dots or as
/// themselves, `\` as `/` or not, `;parameters` stripped or kept. Credentials belong under the
/// base path only when it is there in each of them (a server that reads `．．` as a name routes
/// `/scim/v2x/．．/v2` to `v2x`).
fn readings(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for rounds in 0..=3 {
        for fullwidth in [false, true] {
            for backslash in [false, true] {
                for params in [false, true] {
                    out.push(reading(path, rounds, fullwidth, backslash, params));
                }
            }
        }
    }
    out
}

fn reading(path: &str, rounds: usize, fullwidth: bool, backslash: bool, params: bool) -> String {
    let mut decoded = path.to_string();
    for _ in 0..rounds {
        decoded = percent_decode_str(&decoded).decode_utf8_lossy().into_owned();
    }
    if fullwidth {
        decoded = decoded.replace('\u{FF0E}', ".");
    }
    if backslash {
        decoded = decoded.replace('\\', "/");
    }
    let mut out: Vec<&str> = Vec::new();
    for seg in decoded.split(['/', '?']).take_while(|s| !s.contains('#')) {
        let seg = match params {
            true => seg.split(';').next().unwrap_or(seg),
            false => seg,
        };
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

fn under_base(path: &str) -> bool {
    path.split('/').take(3).collect::<Vec<_>>() == ["", "scim", "v2"]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    /// Over generated absolute URLs (host and scheme case, explicit ports, another origin on the
    /// same server, userinfo, dot segments, encoded slashes): the client's credentials reach a
    /// server exactly when the URL is on its origin and under its base path, and whatever
    /// arrived with them routes under the base path. A client granted the target's whole origin
    /// for reads (`on_whole_origin`: job status, and probes of services on the target's origin
    /// however their URL is written, `http://127.0.0.1:PORT/linked/...` beside a base of
    /// `/scim/v2`) sends them with every read of that origin, and with nothing else.
    #[test]
    fn credentials_arrive_only_under_the_base_path(
        scheme in prop::sample::select(&["http", "HTTP"][..]),
        host in prop::sample::select(&["127.0.0.1", "localhost"][..]),
        userinfo in prop::sample::select(&["", "", "u:p@"][..]),
        to_attacker in prop::bool::weighted(0.2),
        start in prop::sample::select(&["", "scim/v2/", "scim/v2/", "scim/v2x/", "scim/", "linked/directory/Users/"][..]),
        pieces in prop::collection::vec(piece(), 0..5),
        granted in prop::bool::weighted(0.3),
        write in prop::bool::weighted(0.2),
    ) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let (target, at_target) = serve(ok).await;
            let (attacker, at_attacker) = serve(ok).await;
            let client = match granted {
                true => client_of(&target).on_whole_origin().unwrap(),
                false => client_of(&target),
            };
            let port = |u: &str| u.rsplit(':').next().unwrap_or_default().to_string();
            let port = if to_attacker { port(&attacker) } else { port(&target) };
            let url = format!("{scheme}://{userinfo}{host}:{port}/{start}{}", pieces.join("/"));
            let Ok(parsed) = reqwest::Url::parse(&url) else { return Ok(()) };
            let method = if write { reqwest::Method::POST } else { reqwest::Method::GET };
            let _ = client.call(method, &url, None).await;
            let on_origin = !to_attacker && host == "127.0.0.1" && userinfo.is_empty();
            let expected = match granted {
                true => on_origin && !write,
                false => on_origin && readings(parsed.path()).iter().all(|r| under_base(r)),
            };
            let seen: Vec<_> = at_target.0.lock().iter().chain(at_attacker.0.lock().iter()).cloned().collect();
            for (line, h) in &seen {
                if credentialed(h) {
                    prop_assert!(expected, "{} -> {}: credentials outside the base", url, line);
                    let path = line.split(' ').nth(1).unwrap_or_default();
                    prop_assert!(granted || routed(path).starts_with("/scim/v2"), "{} arrived as {}", url, line);
                } else {
                    prop_assert!(!expected, "{} -> {}: no credentials under the base", url, line);
                }
            }
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn a_redirect_is_an_answer_never_a_request_elsewhere() {
    let (attacker, at_attacker) = serve(ok).await;
    // A token endpoint (and everything else on its origin) answering 307 to the attacker.
    static ATTACKER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ATTACKER.set(attacker.clone()).unwrap();
    let (idp, at_idp) = serve(|_| {
        let to = format!("{}/stolen", ATTACKER.get().unwrap());
        (StatusCode::TEMPORARY_REDIRECT, [("location", to)]).into_response()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "cs-0123456789").unwrap();
    let text = format!(
        "name = \"egress\"\n[load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n\
         [[journey]]\nname = \"one\"\nsteps = [\"create_user\"]\n\
         [target]\nkind = \"scim\"\nbase_url = \"{idp}/scim/v2\"\n\
         auth = {{ kind = \"oauth2-client-credentials\", token_url = \"{idp}/oauth/token\", client_id = \"c\", client_secret_file = \"secret\" }}\n"
    );
    let path = dir.path().join("w.toml");
    std::fs::write(&path, &text).unwrap();
    let w = Workload::load(&path, &Default::default()).unwrap();
    let run = engine::run(
        RunOptions {
            out: Some(dir.path().join("results")),
            cleanup_timeout: Duration::from_secs(2),
            ..RunOptions::new(w)
        },
        CancellationToken::new(),
    );
    let result = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run ends");
    assert!(result.is_err(), "a token endpoint that only redirects cannot sign in");
    assert!(!at_idp.0.lock().is_empty(), "the token endpoint was asked");
    assert!(
        at_attacker.0.lock().is_empty(),
        "followed to the attacker: {:?}",
        at_attacker.0.lock().iter().map(|(l, _)| l).collect::<Vec<_>>()
    );
}
