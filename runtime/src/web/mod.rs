//! The status page `mission up` serves with `[web] listen`: one
//! server-rendered page (refreshing itself, nothing loaded from outside the
//! binary), its data as JSON, and buttons to run, pause or resume a
//! schedule.
//!
//! Who may do what: a loopback client may look without a token; anyone
//! else needs the token (`[web] token_env`). The buttons always need the
//! token, and are refused from other sites: the token travels in a
//! `SameSite=Strict` cookie, each form carries a value derived from it, and
//! a cross-site `Origin` or `Sec-Fetch-Site` is refused.

pub mod status;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::host::Host;
use crate::schedule;
use crate::serve::control::{self, RequestKind};
use status::Status;

/// How often the page reloads itself.
const REFRESH_SECONDS: u32 = 10;
const COOKIE: &str = "mission_token";

/// The page.
#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    status: Status,
    refresh_seconds: u32,
    can_act: bool,
    csrf: String,
}

struct Web {
    host: Arc<Host>,
    token: Option<String>,
}

/// Serves the page on `listener` until `shutdown`; `token` is the page's
/// token, if it has one.
pub async fn serve(
    host: Arc<Host>,
    listener: tokio::net::TcpListener,
    token: Option<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let web = Arc::new(Web { host, token });
    let app = Router::new()
        .route("/", get(page))
        .route("/api/status", get(api_status))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/schedules/{name}/{action}", post(act))
        .with_state(web);
    let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await;
    if let Err(e) = served {
        tracing::error!("the status page stopped: {e}");
    }
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
        if client.ip().is_loopback() {
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
    let status = match status::gather(&web.host, Utc::now()).await {
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
    match status::gather(&web.host, Utc::now()).await {
        Ok(status) => Json(status).into_response(),
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
    let (schedules, _) = schedule::load_all(&web.host.config(), schedule::host_zone());
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
        (Some(origin), Some(host)) => {
            let origin = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            origin != host
        }
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
pub async fn start(host: Arc<Host>, shutdown: impl Future<Output = ()> + Send + 'static) {
    let Some(web) = host.config().web.clone() else {
        return;
    };
    let token = match &web.token_env {
        Some(name) => match std::env::var(name) {
            Ok(token) if !token.is_empty() => Some(token),
            _ => {
                tracing::error!(
                    "web.token_env: the environment variable `{name}` is not set: the page's buttons are off{}",
                    if web.listen.ip().is_loopback() { "" } else { " and only loopback clients are answered" }
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
    serve(host, listener, token, shutdown).await;
}
