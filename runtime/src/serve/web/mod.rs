//! The status page `mission up` serves with `[web] listen`: one
//! server-rendered page (refreshing itself, nothing loaded from outside the
//! binary), its data as JSON, its metrics for Prometheus, and buttons to run, pause or resume a
//! schedule.
//!
//! Who may do what: a loopback client may look without a token; anyone
//! else needs the token (`[web] token_env`). The buttons always need the
//! token, and are refused from other sites: the token travels in a
//! `SameSite=Strict` cookie, each form carries a value derived from it, and
//! a cross-site `Origin` or `Sec-Fetch-Site` is refused.
//!
//! Before any of that, a request must name the page by one of its own
//! names in `Host` (the loopback names, the listen address, `[web] hosts`):
//! a site that rebinds its own name to 127.0.0.1 gets nothing. Every answer
//! carries a strict `Content-Security-Policy`, may not be framed, sniffed
//! or cached.

pub mod metrics;
pub mod status;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::extract::Request;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::db::Database;
use crate::os::zone::host_zone;
use crate::plugin::Plugin;
use crate::serve::control::{self, RequestKind};
use crate::triggers::schedule;
use status::Status;

/// How often the page reloads itself.
const REFRESH_SECONDS: u32 = 10;
const COOKIE: &str = "mission_token";
/// The page loads nothing, runs no script, and posts only to itself.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The page.
#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    status: Status,
    refresh_seconds: u32,
    can_act: bool,
    csrf: String,
}

/// What the page needs of the host, and no more: the database, the config
/// of the moment, the plugins serving, whether the bot is connected.
/// (`serve` implements it for `Host`.)
pub trait StatusSource: Send + Sync + 'static {
    /// The database.
    fn db(&self) -> &Database;
    /// The config as it stands (hot reload may have changed it).
    fn config(&self) -> Arc<Config>;
    /// The plugins loaded now.
    fn plugins(&self) -> Vec<Arc<Plugin>>;
    /// Whether the bot has a client (`[telegram]` and its token).
    fn bot_connected(&self) -> bool;
    /// Whether the plugins are still being loaded at start.
    fn loading(&self) -> bool;
}

struct Web {
    host: Arc<dyn StatusSource>,
    token: Option<String>,
    names: PageNames,
}

/// The names the page answers to in a request's `Host`.
#[derive(Debug, Clone)]
pub struct PageNames {
    /// Lowercase names and addresses (IPv6 without brackets).
    names: Vec<String>,
    /// Listening on every address: any IP address is one of the page's
    /// (a literal address cannot be rebound; a name still must be listed).
    any_address: bool,
}

impl PageNames {
    /// The loopback names, `listen`'s address and `extra`.
    pub fn new(listen: SocketAddr, extra: &[String]) -> PageNames {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
        names.push(listen.ip().to_string());
        names.push(listen.ip().to_canonical().to_string());
        names.extend(extra.iter().map(|name| name.to_ascii_lowercase()));
        PageNames {
            names,
            any_address: listen.ip().is_unspecified(),
        }
    }

    /// Whether `host` (a `Host` header: name or address, maybe a port) is
    /// one of the page's names.
    pub fn allows(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            Some(rest) => match rest.split_once(']') {
                Some((address, port)) if port.is_empty() || port.starts_with(':') => address,
                _ => return false,
            },
            None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
        };
        let name = name.to_ascii_lowercase();
        if self.names.contains(&name) {
            return true;
        }
        self.any_address && name.parse::<std::net::IpAddr>().is_ok()
    }
}

/// Serves the page on `listener`, to requests naming it by one of `names`,
/// until `shutdown`; `token` is the page's token, if it has one.
pub async fn serve(
    host: Arc<dyn StatusSource>,
    listener: tokio::net::TcpListener,
    token: Option<String>,
    names: PageNames,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let web = Arc::new(Web { host, token, names });
    let app = Router::new()
        .route("/", get(page))
        .route("/api/status", get(api_status))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/schedules/{name}/{action}", post(act))
        .layer(middleware::from_fn_with_state(web.clone(), guard))
        .with_state(web);
    let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await;
    if let Err(e) = served {
        tracing::error!("the status page stopped: {e}");
    }
}

/// Refuses a request whose `Host` is not one of the page's names, before
/// any handler runs, and adds the headers every answer carries.
async fn guard(State(web): State<Arc<Web>>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|v| v.to_str().ok());
    let mut response = match host {
        Some(host) if web.names.allows(host) => next.run(request).await,
        _ => {
            tracing::warn!(
                host = host.unwrap_or("none"),
                "status page: refused a request for a name that is not the page's"
            );
            (
                StatusCode::MISDIRECTED_REQUEST,
                "misdirected: this page answers only to its own names (add others to [web] hosts)\n",
            )
                .into_response()
        }
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Look (a loopback client without the token).
    View,
    /// Look and press the buttons (the token).
    Act,
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

impl Web {
    /// The token a request carries: `Authorization: Bearer`, the cookie, or
    /// `?token=`.
    fn presented<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='));
        bearer.or(cookie).or(query)
    }

    fn valid(&self, presented: Option<&str>) -> bool {
        match (&self.token, presented) {
            (Some(token), Some(presented)) => constant_time_eq(token.as_bytes(), presented.as_bytes()),
            _ => false,
        }
    }

    /// What `client` with `headers` may do; `None` for nothing.
    fn access(&self, client: SocketAddr, headers: &HeaderMap, query: Option<&str>) -> Option<Access> {
        if self.valid(Self::presented(headers, query)) {
            return Some(Access::Act);
        }
        if client.ip().to_canonical().is_loopback() {
            return Some(Access::View);
        }
        tracing::warn!(%client, "status page: refused a client that is not on this machine and has no token");
        None
    }

    /// The form value that proves a button press came from the page.
    fn csrf(&self) -> String {
        let token = self.token.as_deref().unwrap_or_default();
        hex(&Sha256::digest(format!("mission-csrf:{token}")))
    }
}

async fn page(
    State(web): State<Arc<Web>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(access) = web.access(client, &headers, query.token.as_deref()) else {
        return stranger();
    };
    // A token in the address is swapped for a cookie, and taken out of the
    // address (and so out of the history and logs).
    if let (Some(token), Access::Act) = (query.token, access) {
        let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
        return ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response();
    }
    let status = match status::gather(&*web.host, Utc::now()).await {
        Ok(status) => status,
        Err(e) => return failed(e),
    };
    let page = StatusPage {
        status,
        refresh_seconds: REFRESH_SECONDS,
        can_act: access == Access::Act,
        csrf: web.csrf(),
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => failed(e.into()),
    }
}

async fn api_status(
    State(web): State<Arc<Web>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if web.access(client, &headers, None).is_none() {
        return stranger();
    }
    match status::gather(&*web.host, Utc::now()).await {
        Ok(status) => Json(status).into_response(),
        Err(e) => failed(e),
    }
}

/// `/metrics`, for Prometheus (OpenMetrics if asked for, else the classic
/// format): the same access as the page's data.
async fn metrics_text(
    State(web): State<Arc<Web>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if web.access(client, &headers, None).is_none() {
        return stranger();
    }
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    match metrics::render(&*web.host).await {
        Ok(text) if openmetrics => ([(header::CONTENT_TYPE, metrics::OPENMETRICS)], text).into_response(),
        Ok(text) => (
            [(header::CONTENT_TYPE, metrics::CLASSIC)],
            metrics::classic(&text),
        )
            .into_response(),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct ActionForm {
    csrf: String,
}

async fn act(
    State(web): State<Arc<Web>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((name, action)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    let refuse = |status: StatusCode, why: &str| {
        tracing::warn!(%client, schedule = %name, action = %action, "status page: refused a button: {why}");
        (status, format!("{why}\n")).into_response()
    };
    match web.access(client, &headers, None) {
        Some(Access::Act) => {}
        Some(Access::View) => {
            return refuse(
                StatusCode::FORBIDDEN,
                "forbidden: the buttons need the page's token",
            )
        }
        None => return stranger(),
    }
    if cross_site(&headers) || !constant_time_eq(form.csrf.as_bytes(), web.csrf().as_bytes()) {
        return refuse(StatusCode::FORBIDDEN, "forbidden: not sent from the status page");
    }
    let (schedules, _) = schedule::load_all(&web.host.config(), host_zone());
    if !schedules.iter().any(|s| s.name == name) {
        return refuse(StatusCode::NOT_FOUND, "no such schedule");
    }
    let db = web.host.db();
    let done = match action.as_str() {
        "run" => control::request(db, RequestKind::Trigger, &name).await.map(drop),
        "pause" => schedule::state::set_paused(db, &name, true).await,
        "resume" => schedule::state::set_paused(db, &name, false).await,
        _ => return refuse(StatusCode::NOT_FOUND, "no such action: run, pause or resume"),
    };
    match done {
        Ok(()) => {
            tracing::info!(schedule = %name, action = %action, "status page: button pressed");
            Redirect::to("/").into_response()
        }
        Err(e) => failed(e),
    }
}

/// Whether the browser says the request comes from another site.
fn cross_site(headers: &HeaderMap) -> bool {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
    };
    if let Some(site) = header("sec-fetch-site") {
        if !matches!(site, "same-origin" | "none") {
            return true;
        }
    }
    match (header("origin"), header("host")) {
        // The page is served over plain HTTP, so its own origin is too.
        (Some(origin), Some(host)) => origin != format!("http://{host}"),
        (Some(_), None) => true,
        _ => false,
    }
}

/// The answer to a client on another machine without the token.
fn stranger() -> Response {
    (
        StatusCode::FORBIDDEN,
        "forbidden: this page answers clients on other machines only with its token\n",
    )
        .into_response()
}

fn failed(error: anyhow::Error) -> Response {
    tracing::error!("status page: {error:#}");
    (StatusCode::INTERNAL_SERVER_ERROR, format!("error: {error:#}\n")).into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Binds `[web] listen` and serves the page beside the host; a bind that
/// fails is logged and the host runs without the page.
pub async fn start(host: Arc<dyn StatusSource>, shutdown: impl Future<Output = ()> + Send + 'static) {
    let Some(web) = host.config().web.clone() else {
        return;
    };
    let token = match &web.token_env {
        Some(name) => match std::env::var(name) {
            Ok(token) if !token.is_empty() => Some(token),
            _ => {
                tracing::error!(
                    "web.token_env: the environment variable `{name}` is not set: the page's buttons are off{}",
                    if web.listen.ip().to_canonical().is_loopback() { "" } else { " and only loopback clients are answered" }
                );
                None
            }
        },
        None => None,
    };
    let listener = match tokio::net::TcpListener::bind(web.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(
                "web.listen: cannot listen on {}: {e}: the status page is off",
                web.listen
            );
            return;
        }
    };
    let address = listener.local_addr().map_or(web.listen, |a| a);
    tracing::info!("status page on http://{address}/");
    let names = PageNames::new(web.listen, &web.hosts);
    serve(host, listener, token, names, shutdown).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_answers_to_its_own_names_only() {
        let names = PageNames::new("127.0.0.1:8640".parse().unwrap(), &["mini.lan".into()]);
        for host in [
            "127.0.0.1:8640",
            "localhost:8640",
            "LOCALHOST",
            "[::1]:8640",
            "mini.lan:8640",
            "mini.lan",
        ] {
            assert!(names.allows(host), "{host}");
        }
        for host in [
            "evil.example:8640",
            "evil.example",
            "127.0.0.1.evil.example",
            "[::1",
            "[::1]x",
            "",
            "10.0.0.5:8640",
        ] {
            assert!(!names.allows(host), "{host}");
        }
    }

    #[test]
    fn listening_everywhere_allows_any_address_but_no_other_name() {
        let names = PageNames::new("0.0.0.0:8640".parse().unwrap(), &[]);
        assert!(names.allows("192.168.1.20:8640"));
        assert!(names.allows("[fd00::1]:8640"));
        assert!(!names.allows("rebind.example:8640"));
    }

    #[test]
    fn a_mapped_loopback_listen_address_is_its_own_name() {
        let names = PageNames::new("[::ffff:127.0.0.1]:8640".parse().unwrap(), &[]);
        assert!(names.allows("[::ffff:127.0.0.1]:8640"));
        assert!(names.allows("127.0.0.1:8640"));
    }

    #[test]
    fn an_origin_must_be_the_page_over_http() {
        let headers = |origin: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, "127.0.0.1:8640".parse().unwrap());
            headers.insert(header::ORIGIN, origin.parse().unwrap());
            headers
        };
        assert!(!cross_site(&headers("http://127.0.0.1:8640")));
        assert!(cross_site(&headers("https://127.0.0.1:8640")));
        assert!(cross_site(&headers("http://evil.example")));
        assert!(cross_site(&headers("null")));
    }
}
