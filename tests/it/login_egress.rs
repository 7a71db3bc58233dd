//! Threat-model invariants 2, 3 and 6 for the browser-style sign-in of the login checks: a
//! hostile IdP whose redirects and login form lead to an "attacker" origin (which records every
//! request that reaches it), cookies scoped by RFC 6265, and an endless login page. The run's
//! users come from the embedded reference; the sign-in goes to the IdP servers here.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::Value;

/// A request that reached a server: its request line, headers and body.
#[derive(Clone, Debug)]
struct Hit {
    line: String,
    headers: HeaderMap,
    body: String,
}

impl Hit {
    fn cookies(&self) -> String {
        self.headers
            .get(header::COOKIE)
            .map(|c| String::from_utf8_lossy(c.as_bytes()).into_owned())
            .unwrap_or_default()
    }
}

type Reply = Arc<dyn Fn(&Hit) -> Response + Send + Sync>;

#[derive(Default)]
struct Seen(Mutex<Vec<Hit>>);

impl Seen {
    fn all(&self) -> Vec<Hit> {
        self.0.lock().clone()
    }
}

/// A server on `host`:0 that records each request and answers it with `reply`.
async fn serve(host: &str, reply: Reply) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .fallback(move |State(seen): State<Arc<Seen>>, req: Request| {
            let reply = reply.clone();
            async move {
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
                let hit = Hit {
                    line: format!("{} {}", parts.method, parts.uri),
                    headers: parts.headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                seen.0.lock().push(hit.clone());
                reply(&hit)
            }
        })
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind(format!("{host}:0")).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn redirect(to: &str, cookies: &[&str]) -> Response {
    let mut r = (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response();
    for c in cookies {
        r.headers_mut().append(header::SET_COOKIE, c.parse().unwrap());
    }
    r
}

fn login_page(action: &str) -> Response {
    (
        [(header::SET_COOKIE, "sess=IDP-SESSION-0123; Path=/")],
        axum::response::Html(format!(
            "<form method=post action=\"{action}\"><input name=username><input type=password name=password></form>"
        )),
    )
        .into_response()
}

/// The sign-in of one run against `authorize` (with `flow_extra` in its `login_flow`): the
/// summary's login check.
async fn run_login(authorize: &str, flow_extra: &str, checks_extra: &str) -> Value {
    let flow = format!(
        "login_flow = {{ kind = \"authorization-code\", authorize_url = \"{authorize}\", refresh = false{flow_extra} }}\n"
    );
    run_checks(&format!("{checks_extra}{flow}")).await
}

/// One run of the login check with `checks` in its `[checks]`: the summary's login check.
async fn run_checks(checks: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"login-egress\"\n[target]\nkind = \"embedded\"\nprofile = \"fast\"\n\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 2\n\
         [[journey]]\nname = \"join\"\nsteps = [\"create_user\"]\n\
         [users]\npassword = \"Pw-{{run_id}}-{{seq}}!\"\n\
         [checks]\nkinds = [\"login\"]\nsample = 1.0\ntimeout = \"2s\"\n{checks}"
    );
    // A failing check makes the run fail; its summary is what is judged here.
    let _ = crate::support::run_workload(dir.path(), &text).await;
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results/summary.json")).unwrap()).unwrap();
    summary["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["kind"] == "login"))
        .cloned()
        .unwrap_or_else(|| panic!("no login check in {}", summary["checks"]))
}

/// Redirects and form actions that lead to the attacker, in the spellings a parser may read
/// differently: each fails the check naming the attacker's origin, and nothing reaches it.
#[tokio::test]
async fn the_sign_in_never_goes_to_an_origin_the_workload_does_not_name() {
    let (attacker, at_attacker) = serve("127.0.0.1", Arc::new(|_| StatusCode::OK.into_response())).await;
    let port = attacker.rsplit(':').next().unwrap().to_string();
    let a = format!("127.0.0.1:{port}");
    let steal = [
        (format!("{attacker}/steal"), "redirected to"),
        (format!("//{a}/steal"), "redirected to"),
        (format!("/\\{a}/steal"), "redirected to"),
        (format!("http://idp.example.test@{a}/steal"), "redirected to"),
        (format!("HTTP://%31%32%37.0.0.1:{port}/steal"), "redirected to"),
        (format!("{attacker}/login"), "form posts to"),
        (format!("//{a}/login"), "form posts to"),
    ];
    for (to, how) in steal {
        let form = how == "form posts to";
        let target = to.clone();
        let (idp, _) = serve(
            "127.0.0.1",
            Arc::new(move |_| {
                if form {
                    login_page(&target)
                } else {
                    redirect(&target, &["sess=IDP-SESSION-0123; Path=/"])
                }
            }),
        )
        .await;
        let login = run_login(&format!("{idp}/authorize"), "", "").await;
        let hits = at_attacker.all();
        assert!(hits.is_empty(), "{to} reached the attacker: {hits:?}");
        let text = login.to_string();
        assert!(login["failed"].as_u64().unwrap() > 0, "{to}: {text}");
        let why = format!("{how} http://{a}, which is not one of the IdP origins the workload names");
        assert!(text.contains(&why), "{to}: {text}");
        assert!(text.contains("nothing was sent there"), "{to}: {text}");
    }
}

/// A `Location` with userinfo on the IdP's own origin is refused too (reqwest would send it as
/// Basic credentials): the IdP sees the authorization request and nothing after it.
#[tokio::test]
async fn a_location_with_userinfo_is_not_followed() {
    let (idp, at_idp) = serve(
        "127.0.0.1",
        Arc::new(|hit: &Hit| {
            let host = hit.headers[header::HOST].to_str().unwrap().to_string();
            redirect(&format!("http://ada:pw@{host}/next"), &[])
        }),
    )
    .await;
    let login = run_login(&format!("{idp}/authorize"), "", "").await;
    let text = login.to_string();
    assert!(text.contains("which carries a user name or password"), "{text}");
    let lines: Vec<String> = at_idp.all().into_iter().map(|h| h.line).collect();
    assert!(lines.iter().all(|l| l.starts_with("GET /authorize")), "{lines:?}");
}

/// A full sign-in across two IdP origins the workload names (the second by `idp_origins`):
/// it passes; the IdP's session cookie goes back to its own host only, a cookie scoped to
/// another path stays off other paths, and a cookie set for another host's `Domain` is dropped.
#[tokio::test]
async fn cookies_keep_to_their_host_and_path_and_a_named_second_origin_works() {
    static IDP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static SECOND: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let (second, at_second) = serve(
        "127.0.0.2",
        Arc::new(|_| login_page(&format!("{}/login", IDP.get().unwrap()))),
    )
    .await;
    SECOND.set(second.clone()).unwrap();
    let (idp, at_idp) = serve(
        "127.0.0.1",
        Arc::new(|hit: &Hit| {
            let path = hit.line.split(' ').nth(1).unwrap_or_default();
            if path.starts_with("/authorize") {
                // The state travels in the IdP's session cookie, as a real IdP's session holds it.
                let state = path
                    .split("state=")
                    .nth(1)
                    .unwrap_or("")
                    .split('&')
                    .next()
                    .unwrap_or("");
                return redirect(
                    "/next",
                    &[
                        &format!("state={state}; Path=/"),
                        "deep=DEEP-ONLY; Path=/deep",
                        "planted=PLANTED; Domain=127.0.0.2; Path=/",
                    ],
                );
            }
            if path == "/next" {
                return redirect(&format!("{}/login-page", SECOND.get().unwrap()), &[]);
            }
            if path == "/login" {
                let cookies = Hit::cookies(hit);
                let state = cookies
                    .split("state=")
                    .nth(1)
                    .unwrap_or("")
                    .split(';')
                    .next()
                    .unwrap_or("");
                return redirect(&format!("http://127.0.0.1/callback?code=c0de&state={state}"), &[]);
            }
            if path == "/token" {
                let body = r#"{"access_token":"at-0123","token_type":"Bearer"}"#;
                return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
            }
            StatusCode::OK.into_response()
        }),
    )
    .await;
    IDP.set(idp.clone()).unwrap();
    let login = run_login(
        &format!("{idp}/authorize"),
        &format!(", idp_origins = [\"{second}\"]"),
        &format!("token_url = \"{idp}/token\"\nuserinfo_url = \"{idp}/userinfo\"\n"),
    )
    .await;
    let text = login.to_string();
    assert!(login["passed"].as_u64().unwrap() > 0 && login["failed"] == 0, "{text}");
    let at_second = at_second.all();
    assert!(!at_second.is_empty(), "the second IdP origin was reached");
    for hit in &at_second {
        assert!(
            hit.headers.get(header::COOKIE).is_none(),
            "{}: {:?}",
            hit.line,
            hit.cookies()
        );
    }
    let idp_hits = at_idp.all();
    for hit in &idp_hits {
        let cookies = hit.cookies();
        assert!(
            !cookies.contains("PLANTED") && !cookies.contains("DEEP-ONLY"),
            "{}: {cookies}",
            hit.line
        );
        if hit.line == "GET /next" || hit.line == "POST /login" {
            assert!(cookies.contains("state="), "{}: {cookies}", hit.line);
        }
    }
    let posted = idp_hits
        .iter()
        .find(|h| h.line == "POST /login")
        .expect("the form was posted");
    assert!(posted.body.contains("password=Pw-"), "{}", posted.body);
}

/// A login page without end is refused at the limit with a sample, never read whole.
#[tokio::test]
async fn an_endless_login_page_fails_the_check_with_a_sample() {
    let (idp, _) = serve(
        "127.0.0.1",
        Arc::new(|_| {
            // 64 MiB in 64 KiB chunks with no Content-Length: far past the page limit, yet
            // finite, so that code without the limit reads it and fails this test.
            Response::new(Body::new(Chunks(1024)))
        }),
    )
    .await;
    let login = run_login(&format!("{idp}/authorize"), "", "").await;
    let text = login.to_string();
    assert!(
        text.contains("longer than the limit of 1048576 bytes; it began: xxx"),
        "{text}"
    );
}

/// A token endpoint without end, for the password grant and for the code exchange: the check
/// fails at the limit with a sample.
#[tokio::test]
async fn an_endless_token_answer_fails_the_check_with_a_sample() {
    let (idp, _) = serve(
        "127.0.0.1",
        Arc::new(|hit: &Hit| {
            let path = hit.line.split(' ').nth(1).unwrap_or_default();
            if path.starts_with("/authorize") {
                let state = path
                    .split("state=")
                    .nth(1)
                    .unwrap_or("")
                    .split('&')
                    .next()
                    .unwrap_or("");
                return redirect(&format!("http://127.0.0.1/callback?code=c0de&state={state}"), &[]);
            }
            Response::new(Body::new(Chunks(1024)))
        }),
    )
    .await;
    let token = format!("token_url = \"{idp}/token\"\n");
    for login in [
        run_checks(&token).await,
        run_login(&format!("{idp}/authorize"), "", &token).await,
    ] {
        let text = login.to_string();
        assert!(
            text.contains("longer than the limit of 1048576 bytes; it began: xxx"),
            "{text}"
        );
    }
}

/// A body of `n` chunks of 64 KiB of `x`, each ready at once.
struct Chunks(usize);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        if self.0 == 0 {
            return std::task::Poll::Ready(None);
        }
        self.0 -= 1;
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from(vec![b'x'; 64 * 1024])))))
    }
}
