//! `provbench init` and the OAuth2 side of a target: the token endpoint's metadata decides the
//! client authentication written (and `init --check` names a workload that has another), a
//! metadata document that lies (another token endpoint, a redirect, an endless body) is not
//! believed and nothing is sent to a foreign origin, and `--login-url` writes a login check that
//! judges, whatever shape the reference's login takes. Each written workload passes
//! `validate --online` and runs with 0 errors.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use provbench::reference::config::{ClientAuthMethods, ReferenceConfig};
use serde_json::{Value, json};

use crate::support::start_reference;

const SECRET_ENV: &str = "INIT_OAUTH_SECRET";
const SECRET: &str = "provbench-admin-secret";

/// `provbench ARGS` in `dir`, with the client secret in the environment.
async fn provbench(dir: &Path, args: Vec<String>) -> Output {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_provbench"))
            .current_dir(dir)
            .args(args)
            .env(SECRET_ENV, SECRET)
            .env_remove("GITHUB_ACTIONS")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn said(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `init` of an OAuth2-signed-in SCIM target at `scim` (token endpoint `token_url`), then
/// `validate --online` and a short run of what it wrote; the workload's text, init's stderr,
/// and the run's summary.
async fn init_validate_run(dir: &Path, scim: &str, token_url: &str, extra: &[&str]) -> (String, String, Value) {
    let mut a = args(&[
        "init",
        scim,
        "--token-url",
        token_url,
        "--client-id",
        "provbench-admin",
        "--client-secret-env",
        SECRET_ENV,
        "--timeout",
        "5s",
        "--out",
        "w.toml",
    ]);
    a.extend(args(extra));
    let init = provbench(dir, a).await;
    assert_eq!(init.status.code(), Some(0), "init: {}", said(&init));
    let text = std::fs::read_to_string(dir.join("w.toml")).unwrap();
    let heard = String::from_utf8_lossy(&init.stderr).into_owned();
    let valid = provbench(dir, args(&["validate", "--online", "w.toml"])).await;
    assert_eq!(valid.status.code(), Some(0), "validate: {}\n{text}", said(&valid));
    let run = provbench(
        dir,
        args(&["run", "w.toml", "--duration", "4s", "--no-progress", "--out", "results"]),
    )
    .await;
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results/summary.json")).unwrap()).unwrap();
    assert_eq!(run.status.code(), Some(0), "run: {}\n{text}", said(&run));
    let errors: u64 = summary["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["errors"].as_u64())
        .sum();
    assert_eq!(errors, 0, "{}", summary["metrics"]);
    (text, heard, summary)
}

fn workload(text: &str) -> toml::Table {
    toml::from_str(text).unwrap()
}

/// The reference taking one client authentication method: init writes that one (its metadata
/// says so), the workload validates and runs; and `init --check` of the same workload with the
/// other method exits 1 naming `[target] auth.client_auth`; `--client-auth` of the other method
/// is refused at sign-in with the one to try.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_writes_the_client_authentication_the_token_endpoint_takes() {
    for (method, name, other) in [
        (ClientAuthMethods::Basic, "basic", "post"),
        (ClientAuthMethods::Post, "post", "basic"),
    ] {
        let reference = start_reference(ReferenceConfig {
            client_auth: method,
            ..ReferenceConfig::profile("fast").unwrap()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let token_url = format!("{}/oauth/token", reference.root);
        let (text, heard, _) = init_validate_run(dir.path(), &reference.scim, &token_url, &[]).await;
        let w = workload(&text);
        assert_eq!(w["target"]["auth"]["client_auth"].as_str(), Some(name), "{text}");
        assert!(text.contains(&format!("takes client_secret_{name} only")), "{text}");
        assert!(heard.contains("/.well-known/openid-configuration"), "{heard}");

        let wrong = text.replace(
            &format!("auth.client_auth = \"{name}\""),
            &format!("auth.client_auth = \"{other}\""),
        );
        std::fs::write(dir.path().join("wrong.toml"), wrong).unwrap();
        let check = provbench(dir.path(), args(&["init", "--check", "wrong.toml"])).await;
        let out = said(&check);
        assert_eq!(check.status.code(), Some(1), "{out}");
        assert!(out.contains("[target] auth.client_auth"), "{out}");
        assert!(out.contains(&format!("client_secret_{name} only")), "{out}");
        assert!(!out.contains(SECRET), "{out}");

        // Told to authenticate the other way, init's sign-in is refused, and the error names
        // the method the endpoint's metadata lists.
        let told = provbench(
            dir.path(),
            args(&[
                "init",
                &reference.scim,
                "--token-url",
                &token_url,
                "--client-id",
                "provbench-admin",
                "--client-secret-env",
                SECRET_ENV,
                "--client-auth",
                other,
            ]),
        )
        .await;
        let out = said(&told);
        assert_eq!(told.status.code(), Some(2), "{out}");
        assert!(out.contains(&format!("try --client-auth {name}")), "{out}");
        assert!(!out.contains(SECRET), "{out}");
        reference.stop().await;
    }
}

/// Every request a server saw: its request line and headers.
#[derive(Default)]
struct Seen(Mutex<Vec<(String, HeaderMap)>>);

/// How a recording server answers a request line.
type Reply = Arc<dyn Fn(&str) -> Response + Send + Sync>;

/// A server on 127.0.0.1:0 that records each request and answers `reply(line)`.
async fn serve(reply: Reply) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .fallback(move |State(seen): State<Arc<Seen>>, req: Request| {
            let reply = reply.clone();
            async move {
                let line = format!("{} {}", req.method(), req.uri());
                seen.0.lock().push((line.clone(), req.headers().clone()));
                reply(&line)
            }
        })
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// A token endpoint whose metadata lies in every way a document can: the OIDC place names the
/// attacker's token endpoint (and `client_secret_post` only), the RFC 8414 place redirects to
/// the attacker, another place answers without end. The token endpoint itself hands out the
/// reference's admin token. Init believes none of the documents (it writes the default method,
/// basic, which the endpoint takes), says why, and sends nothing to the attacker's origin and no
/// credential with any metadata request; the workload validates and runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_metadata_is_not_believed_and_nothing_reaches_another_origin() {
    let reference = start_reference(ReferenceConfig::profile("fast").unwrap()).await;
    let (attacker, at_attacker) = serve(Arc::new(|_: &str| StatusCode::OK.into_response())).await;
    let admin = reference.token.clone();
    let to = attacker.clone();
    let (idp, at_idp) = serve(Arc::new(move |line: &str| {
        let path = line.split_whitespace().nth(1).unwrap_or("");
        match path {
            "/.well-known/openid-configuration" => axum::Json(json!({
                "issuer": to,
                "token_endpoint": format!("{to}/oauth/token"),
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
            }))
            .into_response(),
            "/.well-known/oauth-authorization-server" => (
                StatusCode::FOUND,
                [(header::LOCATION, format!("{to}/.well-known/oauth-authorization-server"))],
            )
                .into_response(),
            "/oauth/.well-known/openid-configuration" => {
                let start = futures_util::stream::once(async {
                    Ok::<_, std::io::Error>(Bytes::from_static(b"{\"token_endpoint\": \""))
                });
                let endless = futures_util::stream::repeat_with(|| Ok(Bytes::from(vec![b'a'; 64 * 1024])));
                use futures_util::StreamExt;
                Body::from_stream(start.chain(endless)).into_response()
            }
            "/oauth/token" => axum::Json(json!({"access_token": admin, "expires_in": 3600})).into_response(),
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token_url = format!("{idp}/oauth/token");
    let (text, heard, _) = init_validate_run(dir.path(), &reference.scim, &token_url, &[]).await;
    let w = workload(&text);
    assert_eq!(w["target"]["auth"]["client_auth"].as_str(), Some("basic"), "{text}");
    assert!(heard.contains("names another token endpoint"), "{heard}");
    assert!(heard.contains("redirects (HTTP 302"), "{heard}");
    assert!(heard.contains("longer than the limit"), "{heard}");
    assert!(heard.contains("no OAuth2 metadata at"), "{heard}");
    let foreign: Vec<String> = at_attacker.0.lock().iter().map(|(l, _)| l.clone()).collect();
    assert!(foreign.is_empty(), "sent to the attacker: {foreign:?}");
    let seen: Vec<(String, HeaderMap)> = at_idp.0.lock().clone();
    let metadata: Vec<&(String, HeaderMap)> = seen.iter().filter(|(l, _)| l.contains("/.well-known/")).collect();
    assert!(metadata.len() >= 3, "{seen:?}");
    for (line, headers) in metadata {
        assert!(line.starts_with("GET "), "{line}");
        assert!(
            headers.get(header::AUTHORIZATION).is_none(),
            "{line} carried credentials"
        );
    }
    reference.stop().await;
}

/// `--login-url` against each login shape of the reference: the password grant allowed (the
/// simpler flow), a one-page login form with a CSRF field, and an identifier-first one. The
/// written login check runs judged: `min_evidence` met, none failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_shape_is_written_as_a_login_check_that_judges() {
    for (password_grant, identifier_first, flow) in [
        (true, false, "password"),
        (false, false, "authorization-code"),
        (false, true, "authorization-code"),
    ] {
        let reference = start_reference(ReferenceConfig {
            password_grant,
            login_identifier_first: identifier_first,
            client_auth: ClientAuthMethods::Basic,
            ..ReferenceConfig::profile("fast").unwrap()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let token_url = format!("{}/oauth/token", reference.root);
        // The authorize URL, or the issuer the metadata is found under.
        let login = match identifier_first {
            true => reference.root.clone(),
            false => format!("{}/oauth/authorize", reference.root),
        };
        let (text, heard, summary) =
            init_validate_run(dir.path(), &reference.scim, &token_url, &["--login-url", &login]).await;
        let w = workload(&text);
        let checks = &w["checks"];
        assert_eq!(checks["login_flow"]["kind"].as_str(), Some(flow), "{text}");
        assert_eq!(checks["login_client"]["client_auth"].as_str(), Some("basic"), "{text}");
        assert!(w["users"]["password"].is_str(), "{text}");
        if !password_grant {
            let f = &checks["login_flow"];
            assert_eq!(f["csrf_field"].as_str(), Some("csrf_token"), "{text}");
            assert_eq!(
                f["authorize_url"].as_str(),
                Some(format!("{}/oauth/authorize", reference.root).as_str())
            );
            assert!(
                text.contains("login_flow.consent"),
                "the commented consent line: {text}"
            );
            let shape = match identifier_first {
                true => "identifier-first",
                false => "one page",
            };
            assert!(heard.contains(shape), "{heard}");
        }
        let login = summary["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == "login")
            .unwrap_or_else(|| panic!("no login check: {}", summary["checks"]))
            .clone();
        let min = checks["min_evidence"].as_integer().unwrap() as u64;
        assert!(
            login["passed"].as_u64().unwrap() >= min && login["failed"] == 0,
            "{flow}: {login}"
        );
        assert!(!text.contains(SECRET));
        reference.stop().await;
    }
}
