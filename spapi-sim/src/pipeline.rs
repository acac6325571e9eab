//! The per-request pipeline Amazon applies in front of every SP-API operation — record → auth
//! (403) → injected fault → token bucket (429) → the operation (validation 400/404, answer) — and
//! the shape of what comes back: Amazon's headers (`x-amzn-RequestId`, `x-amzn-RateLimit-Limit`)
//! and `{"errors":[...]}` bodies.
//!
//! Operations plug in as a closure run under the state lock; this module never knows what an
//! operation does, and never holds the lock across an `.await`.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};

use crate::api::{ApiError, Params};
use crate::state::{AuthFailure, Shared, State};
use crate::token::{PageToken, TokenKind};
use crate::{FaultKind, RecordedRequest, SimOp, huge};

/// What an operation answers before headers are added.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    /// `Some(rate)` adds `x-amzn-RateLimit-Limit` (Amazon sends it on 20x/400/404 only).
    pub rate_limit: Option<f64>,
}

impl Reply {
    pub fn json(status: u16, body: &Value, rate_limit: Option<f64>) -> Reply {
        Reply {
            status,
            body: body.to_string().into_bytes(),
            content_type: "application/json",
            rate_limit,
        }
    }

    pub fn into_response(self, request_id: &str) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert("x-amzn-RequestId", value);
        }
        if let Some(rate) = self.rate_limit
            && let Ok(value) = HeaderValue::from_str(&format!("{rate}"))
        {
            headers.insert("x-amzn-RateLimit-Limit", value);
        }
        (status, headers, self.body).into_response()
    }
}

pub(crate) fn error_body(code: &str, message: &str, details: &str) -> Value {
    json!({"errors": [{"code": code, "message": message, "details": details}]})
}

fn fault_status_code(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("InvalidInput", "Invalid Input"),
        403 => ("Unauthorized", "Access to requested resource is denied."),
        404 => ("NotFound", "The resource specified does not exist."),
        429 => (
            "QuotaExceeded",
            "You exceeded your quota for the requested resource.",
        ),
        503 => (
            "ServiceUnavailable",
            "Service temporarily unavailable. Please try again later.",
        ),
        _ => (
            "InternalFailure",
            "We encountered an internal error. Please try again.",
        ),
    }
}

pub(crate) fn html_page(status: u16) -> String {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    format!(
        "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
    )
}

/// A 200 of `total` bytes of plausible JSON, streamed; with or without a Content-Length header.
pub(crate) fn huge_response(
    op: SimOp,
    total: u64,
    with_length: bool,
    content_type: &'static str,
    request_id: &str,
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-RequestId", value);
    }
    if with_length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    }
    (StatusCode::OK, headers, huge::body(op, total)).into_response()
}

/// Adds a request to the statistics and the log; returns its index in the log.
pub(crate) fn record(state: &mut State, op: SimOp, uri: &Uri) -> usize {
    *state.stats.requests.entry(op).or_insert(0) += 1;
    state.requests.push(RecordedRequest {
        op,
        path: uri.path().to_string(),
        raw_query: uri.query().unwrap_or("").to_string(),
        status: 0,
        at: Utc::now(),
    });
    state.requests.len() - 1
}

/// Where an operation's pagination token travels: (request parameter, path of the answer's
/// field, token kind).
fn page_token_field(op: SimOp) -> Option<(&'static str, [&'static str; 2], TokenKind)> {
    match op {
        SimOp::GetOrdersV0 => Some((
            "NextToken",
            ["payload", "NextToken"],
            TokenKind::GetOrdersV0,
        )),
        SimOp::GetOrderItemsV0 => Some((
            "NextToken",
            ["payload", "NextToken"],
            TokenKind::GetOrderItemsV0,
        )),
        SimOp::SearchOrders => Some((
            "paginationToken",
            ["pagination", "nextToken"],
            TokenKind::SearchOrders,
        )),
        _ => None,
    }
}

/// `FaultKind::RepeatPageToken`: the answer's next token becomes the one the request sent, or,
/// on a first page, the sim's repeating token (which keeps answering page 1 with itself).
fn repeat_page_token(op: SimOp, uri: &Uri, body: &mut Value) {
    let Some((param, [outer, field], kind)) = page_token_field(op) else {
        return;
    };
    let params = Params::parse(uri.query().unwrap_or(""));
    let token = match params.get(param) {
        Ok(Some(sent)) => sent.to_string(),
        _ => PageToken::repeating(kind).encode(),
    };
    if let Some(object) = body.as_object_mut() {
        let container = object.entry(outer).or_insert_with(|| json!({}));
        if let Some(container) = container.as_object_mut() {
            container.insert(field.to_string(), json!(token));
        }
    }
}

/// Runs Amazon's request pipeline around one operation. `answer` does validation and rendering
/// under the state lock and gets the seller's id; `success` is the status of a good answer (200,
/// or 202 for createReport). An `ApiError` with status 429 (a hidden quota) is answered like the
/// token bucket's own 429: no rate-limit header, counted as throttled.
pub(crate) async fn serve_op(
    shared: Arc<Shared>,
    op: SimOp,
    uri: &Uri,
    headers: &HeaderMap,
    success: u16,
    answer: impl FnOnce(&mut State, &str) -> Result<Value, ApiError>,
) -> Response {
    let (record_index, request_id, auth) = {
        let mut state = shared.lock();
        let index = record(&mut state, op, uri);
        let request_id = state.request_id();
        let token = headers
            .get("x-amz-access-token")
            .and_then(|v| v.to_str().ok());
        let auth = state.authenticate(token);
        (index, request_id, auth)
    };
    let finish = |status: u16, response: Response| -> Response {
        shared.lock().requests[record_index].status = status;
        tracing::info!(?op, path = uri.path(), status, "sp-api request");
        response
    };
    let finish_reply = |reply: Reply| -> Response {
        let status = reply.status;
        finish(status, reply.into_response(&request_id))
    };

    let (refresh_token, seller_id) = match auth {
        Ok(identity) => identity,
        Err(failure) => {
            let details = match failure {
                AuthFailure::Missing => "Access token is missing in the request header.",
                AuthFailure::Invalid => {
                    "The access token you provided is revoked, malformed or invalid."
                }
                AuthFailure::Expired => "The access token you provided has expired.",
            };
            let body = error_body(
                "Unauthorized",
                "Access to requested resource is denied.",
                details,
            );
            return finish_reply(Reply::json(403, &body, None));
        }
    };

    let fault = shared.lock().take_fault(op);
    let mut truncate = false;
    let mut repeat_token = false;
    match fault {
        None | Some(FaultKind::StallAfter(_)) => {}
        Some(FaultKind::Status(status)) => {
            let (code, message) = fault_status_code(status);
            return finish_reply(Reply::json(status, &error_body(code, message, ""), None));
        }
        Some(FaultKind::HtmlStatus(status)) => {
            return finish_reply(Reply {
                status,
                body: html_page(status).into_bytes(),
                content_type: "text/html",
                rate_limit: None,
            });
        }
        Some(FaultKind::TruncatedBody) => truncate = true,
        Some(FaultKind::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(FaultKind::Hang) => {
            // The client is expected to time out; the task dies with the connection or runtime.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Some(FaultKind::RepeatPageToken) => repeat_token = true,
        Some(FaultKind::HugeBody(total)) => {
            let response = huge_response(op, total, true, "application/json", &request_id);
            return finish(200, response);
        }
        Some(FaultKind::HugeBodyChunked(total)) => {
            let response = huge_response(op, total, false, "application/json", &request_id);
            return finish(200, response);
        }
    }

    let reply = {
        let mut state = shared.lock();
        let (rate, _) = state.plan(&shared.config, op);
        let quota_exceeded = || {
            let body = error_body(
                "QuotaExceeded",
                "You exceeded your quota for the requested resource.",
                "",
            );
            Reply::json(429, &body, None)
        };
        if !state.take_token(&shared.config, &refresh_token, op) {
            *state.stats.throttled.entry(op).or_insert(0) += 1;
            quota_exceeded()
        } else {
            match answer(&mut state, &seller_id) {
                Ok(mut body) => {
                    if repeat_token {
                        repeat_page_token(op, uri, &mut body);
                    }
                    Reply::json(success, &body, Some(rate))
                }
                Err(error) if error.status == 429 => {
                    *state.stats.throttled.entry(op).or_insert(0) += 1;
                    quota_exceeded()
                }
                Err(error) => Reply::json(error.status, &error.body(), Some(rate)),
            }
        }
    };
    if truncate {
        let mut cut = reply;
        cut.body.truncate(cut.body.len() / 2);
        cut.status = 200;
        return finish_reply(cut);
    }
    finish_reply(reply)
}

/// Amazon's 404 for paths no operation serves.
pub(crate) fn unknown_route_response() -> Response {
    let body = error_body("NotFound", "The resource specified does not exist.", "");
    Reply::json(404, &body, None).into_response("00000000-0000-0000-0000-000000000000")
}
