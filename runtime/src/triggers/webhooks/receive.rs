//! One webhook request, from its path to its answer: routed, held to its
//! limits, verified, stored, and only then acknowledged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::deliveries::{Arrival, RefusalReason};
use super::dispatch::Lanes;
use super::intake::{Intake, IntakeError, Refusal, Stored};
use super::rate::Rates;
use super::verify;
use crate::config::webhooks::WebhookConfig;
use crate::triggers::Invoker;

/// The longest delivery id kept: a longer one is refused (400), never cut
/// short, so two ids never become one.
const MAX_DELIVERY_ID: usize = 200;

/// Headers the plugin is never given: they carry credentials.
const WITHHELD: &[&str] = &["authorization", "proxy-authorization", "cookie"];

/// What every request is answered with.
pub struct Receiver {
    pub(super) invoker: Invoker,
    pub(super) intake: Intake,
    pub(super) lanes: Arc<Lanes>,
    pub(super) rates: Rates,
}

impl Receiver {
    /// Answers `request`.
    pub async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let received_at = chrono::Utc::now();
        let config = self.invoker.config();
        let Some(webhooks) = config.webhooks.as_ref() else {
            return reply(StatusCode::NOT_FOUND, "not found");
        };
        let path = request.uri().path().to_owned();
        let Some(hook) = path.strip_prefix("/hooks/").and_then(|name| webhooks.hook(name)) else {
            return reply(StatusCode::NOT_FOUND, "not found");
        };
        if request.method() != Method::POST {
            let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, "use POST");
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
            return response;
        }
        let (parts, body) = request.into_parts();
        let query = parts.uri.query().unwrap_or_default().to_owned();
        let delivery_id = hook
            .delivery_id
            .as_ref()
            .and_then(|name| parts.headers.get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let refusal = |reason: RefusalReason, why: String, bytes: u64| Refusal {
            webhook: hook.name.clone(),
            reason,
            // Recorded no longer than a delivery id is kept.
            delivery_id: delivery_id
                .as_deref()
                .unwrap_or_default()
                .chars()
                .take(MAX_DELIVERY_ID)
                .collect(),
            received_at: received_at.timestamp_millis(),
            status: reason.status(),
            why,
            method: parts.method.to_string(),
            path: path.clone(),
            bytes,
        };
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > hook.max_body) {
            return self.refuse(refusal(
                RefusalReason::TooLarge,
                too_large(hook),
                declared.unwrap_or(0),
            ));
        }
        // Verified first: a request that is not the sender's is refused
        // before it can count against the webhook's rate or backlog, and
        // as far as its headers tell, before its body is read.
        let refused = |why: verify::Refusal, bytes: u64| {
            let reason = match why {
                verify::Refusal::NoSecret(_) => {
                    tracing::error!(webhook = hook.name, "cannot verify requests: {why}");
                    return reply(StatusCode::SERVICE_UNAVAILABLE, "not ready");
                }
                verify::Refusal::Missing(_) => RefusalReason::NoProof,
                verify::Refusal::Malformed(_) => RefusalReason::MalformedProof,
                verify::Refusal::Mismatch => RefusalReason::BadSignature,
                verify::Refusal::Stale(_) => RefusalReason::Stale,
            };
            self.refuse(refusal(reason, why.to_string(), bytes))
        };
        let proof = match verify::proof(&hook.verify, &parts.headers, received_at.timestamp()) {
            Ok(proof) => proof,
            Err(why) => return refused(why, declared.unwrap_or(0)),
        };
        let left = webhooks.request_timeout.saturating_sub(started.elapsed());
        let limit = usize::try_from(hook.max_body).unwrap_or(usize::MAX);
        let body = match tokio::time::timeout(left, Limited::new(body, limit).collect()).await {
            Ok(Ok(body)) => body.to_bytes(),
            Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                return self.refuse(refusal(RefusalReason::TooLarge, too_large(hook), hook.max_body));
            }
            Ok(Err(e)) => {
                tracing::debug!(webhook = hook.name, "the request's body broke off: {e}");
                return reply(StatusCode::BAD_REQUEST, "the body broke off");
            }
            Err(_) => {
                let why = format!("the body took longer than webhooks.request_timeout ({left:?} left)");
                return self.refuse(refusal(RefusalReason::TooSlow, why, 0));
            }
        };
        if let Err(why) = proof.check(&body) {
            return refused(why, body.len() as u64);
        }
        if let (Some(id), Some(name)) = (&delivery_id, &hook.delivery_id) {
            if id.len() > MAX_DELIVERY_ID {
                let why = format!(
                    "the delivery id in {name} is {} characters, over the {MAX_DELIVERY_ID} kept \
                     (webhooks.{}.delivery_id)",
                    id.len(),
                    hook.name
                );
                return self.refuse(refusal(RefusalReason::LongDeliveryId, why, body.len() as u64));
            }
        }
        if let Err(wait) = self.rates.take(&hook.name, hook.rate, started) {
            tracing::debug!(webhook = hook.name, "over its rate: 429");
            crate::metrics::get().webhook_delivery(&hook.name, "throttled");
            return retry_after(StatusCode::TOO_MANY_REQUESTS, "too many requests", wait);
        }
        let waiting = self.lanes.waiting(&hook.name);
        if waiting >= webhooks.max_backlog {
            tracing::warn!(
                webhook = hook.name,
                waiting,
                "webhooks.max_backlog reached: 503 until its runs catch up"
            );
            crate::metrics::get().webhook_delivery(&hook.name, "throttled");
            return retry_after(StatusCode::SERVICE_UNAVAILABLE, "busy", Duration::from_secs(30));
        }
        let arrival = Arrival {
            webhook: hook.name.clone(),
            delivery_id: delivery_id.unwrap_or_else(|| made_id(received_at)),
            received_at: received_at.timestamp_millis(),
            method: parts.method.to_string(),
            path,
            query,
            headers: given_headers(&parts.headers, hook),
            body: body.to_vec(),
        };
        match self.intake.store(arrival).await {
            Ok(Stored::New(id)) => {
                self.lanes.push(&hook.name, id, Some(started.elapsed()));
                reply(StatusCode::OK, "stored")
            }
            Ok(Stored::Duplicate) => {
                tracing::info!(
                    webhook = hook.name,
                    "a redelivery of a stored delivery: nothing runs"
                );
                reply(StatusCode::OK, "already stored")
            }
            Err(IntakeError::Full) => {
                tracing::warn!(webhook = hook.name, "the store's queue is full: 503");
                crate::metrics::get().webhook_delivery(&hook.name, "throttled");
                retry_after(StatusCode::SERVICE_UNAVAILABLE, "busy", Duration::from_secs(5))
            }
            Err(e) => {
                tracing::error!(webhook = hook.name, "{e}");
                reply(StatusCode::INTERNAL_SERVER_ERROR, "not stored")
            }
        }
    }

    /// Counts `refusal`, logs and records it (never the body or the
    /// secret) if it is kept as a sample, and answers with its status: a
    /// 401 says no more, any other names the limit.
    fn refuse(&self, refusal: Refusal) -> Response<Full<Bytes>> {
        let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST);
        let text = match status {
            StatusCode::UNAUTHORIZED => "Unauthorized".to_owned(),
            _ => refusal.why.clone(),
        };
        let (webhook, why) = (refusal.webhook.clone(), refusal.why.clone());
        if self.intake.refuse(refusal) {
            tracing::warn!(webhook, status = status.as_u16(), "request refused: {why}");
        } else {
            tracing::debug!(
                webhook,
                status = status.as_u16(),
                "request refused (counted): {why}"
            );
        }
        reply(status, &text)
    }
}

fn too_large(hook: &WebhookConfig) -> String {
    format!(
        "the body is over webhooks.{}.max_body ({} bytes)",
        hook.name, hook.max_body
    )
}

/// The headers the plugin is given: all but credentials and the proof.
fn given_headers(headers: &HeaderMap, hook: &WebhookConfig) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            !WITHHELD.contains(&name) && Some(name) != hook.verify.header()
        })
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect()
}

/// A delivery id for a sender that gives none: unique, never deduplicated.
fn made_id(received_at: chrono::DateTime<chrono::Utc>) -> String {
    format!("mc-{}-{:016x}", received_at.timestamp_micros(), fastrand::u64(..))
}

fn reply(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "status": status.as_u16(), "result": text }).to_string();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

fn retry_after(status: StatusCode, text: &'static str, wait: Duration) -> Response<Full<Bytes>> {
    let mut response = reply(status, text);
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, seconds.to_string().parse().expect("digits"));
    response
}
