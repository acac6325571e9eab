//! The HTTP surface: axum routes for LWA and the four SP-API operations, and the per-request
//! pipeline Amazon applies in front of every operation — record → auth (403) → injected fault →
//! token bucket (429) → validation (400/404) → answer — with Amazon's headers and error bodies.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde_json::{Value, json};

use crate::api::{self, ApiError, Params};
use crate::state::{AuthFailure, Shared};
use crate::{FaultKind, RecordedRequest, SimOp};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/auth/o2/token", post(lwa_token))
        .route("/orders/v0/orders", get(get_orders_v0))
        .route(
            "/orders/v0/orders/{order_id}/orderItems",
            get(get_order_items_v0),
        )
        .route("/orders/2026-01-01/orders", get(search_orders))
        .route("/orders/2026-01-01/orders/{order_id}", get(get_order))
        .fallback(unknown_route)
        .with_state(shared)
}

/// What an operation answers before headers are added.
struct Reply {
    status: u16,
    body: Vec<u8>,
    content_type: &'static str,
    /// `Some(rate)` adds `x-amzn-RateLimit-Limit` (Amazon sends it on 20x/400/404 only).
    rate_limit: Option<f64>,
}

impl Reply {
    fn json(status: u16, body: &Value, rate_limit: Option<f64>) -> Reply {
        Reply {
            status,
            body: body.to_string().into_bytes(),
            content_type: "application/json",
            rate_limit,
        }
    }

    fn into_response(self, request_id: &str) -> Response {
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

fn error_body(code: &str, message: &str, details: &str) -> Value {
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

fn html_page(status: u16) -> String {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    format!(
        "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
    )
}

/// Runs Amazon's request pipeline around one operation. `answer` does validation and rendering
/// under the state lock and gets the seller's id.
async fn serve_op(
    shared: Arc<Shared>,
    op: SimOp,
    uri: &Uri,
    headers: &HeaderMap,
    answer: impl FnOnce(&crate::state::State, &str) -> Result<Value, ApiError>,
) -> Response {
    let raw_query = uri.query().unwrap_or("").to_string();
    let (record_index, request_id, auth) = {
        let mut state = shared.lock();
        *state.stats.requests.entry(op).or_insert(0) += 1;
        state.requests.push(RecordedRequest {
            op,
            path: uri.path().to_string(),
            raw_query,
            status: 0,
            at: Utc::now(),
        });
        let index = state.requests.len() - 1;
        let request_id = state.request_id();
        let token = headers
            .get("x-amz-access-token")
            .and_then(|v| v.to_str().ok());
        let auth = state.authenticate(token);
        (index, request_id, auth)
    };
    let finish = |reply: Reply| -> Response {
        let status = reply.status;
        shared.lock().requests[record_index].status = status;
        tracing::info!(?op, path = uri.path(), status, "sp-api request");
        reply.into_response(&request_id)
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
            return finish(Reply::json(403, &body, None));
        }
    };

    let fault = shared.lock().take_fault(op);
    let mut truncate = false;
    match fault {
        None => {}
        Some(FaultKind::Status(status)) => {
            let (code, message) = fault_status_code(status);
            return finish(Reply::json(status, &error_body(code, message, ""), None));
        }
        Some(FaultKind::HtmlStatus(status)) => {
            return finish(Reply {
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
    }

    let reply = {
        let mut state = shared.lock();
        let (rate, _) = state.plan(&shared.config, op);
        if !state.take_token(&shared.config, &refresh_token, op) {
            *state.stats.throttled.entry(op).or_insert(0) += 1;
            let body = error_body(
                "QuotaExceeded",
                "You exceeded your quota for the requested resource.",
                "",
            );
            Reply::json(429, &body, None)
        } else {
            match answer(&state, &seller_id) {
                Ok(body) => Reply::json(200, &body, Some(rate)),
                Err(error) => Reply::json(error.status, &error.body(), Some(rate)),
            }
        }
    };
    if truncate {
        let mut cut = reply;
        cut.body.truncate(cut.body.len() / 2);
        cut.status = 200;
        return finish(cut);
    }
    finish(reply)
}

async fn get_orders_v0(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref().unwrap_or(""));
    let page_default = shared.config.orders_page_default;
    serve_op(
        shared.clone(),
        SimOp::GetOrdersV0,
        &uri,
        &headers,
        |state, seller| {
            api::get_orders_v0(&params, state.orders.get(seller), page_default, Utc::now())
        },
    )
    .await
}

async fn get_order_items_v0(
    State(shared): State<Arc<Shared>>,
    order_id: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref().unwrap_or(""));
    let page_size = shared.config.items_page_size;
    serve_op(
        shared.clone(),
        SimOp::GetOrderItemsV0,
        &uri,
        &headers,
        |state, seller| {
            let order_id = path_order_id(order_id)?;
            api::get_order_items_v0(
                &params,
                &order_id,
                state.orders.get(seller),
                page_size,
                Utc::now(),
            )
        },
    )
    .await
}

async fn search_orders(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref().unwrap_or(""));
    let page_default = shared.config.orders_page_default;
    serve_op(
        shared.clone(),
        SimOp::SearchOrders,
        &uri,
        &headers,
        |state, seller| {
            api::search_orders(&params, state.orders.get(seller), page_default, Utc::now())
        },
    )
    .await
}

async fn get_order(
    State(shared): State<Arc<Shared>>,
    order_id: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref().unwrap_or(""));
    serve_op(
        shared.clone(),
        SimOp::GetOrder,
        &uri,
        &headers,
        |state, seller| {
            let order_id = path_order_id(order_id)?;
            api::get_order(&params, &order_id, state.orders.get(seller))
        },
    )
    .await
}

/// A path segment that does not percent-decode to UTF-8 is the client's fault: Amazon-style 400.
fn path_order_id(extracted: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    extracted
        .map(|Path(order_id)| order_id)
        .map_err(|_| ApiError::invalid("Invalid Input", "orderId"))
}

async fn unknown_route(uri: Uri) -> Response {
    tracing::info!(path = uri.path(), status = 404, "unknown route");
    let body = error_body("NotFound", "The resource specified does not exist.", "");
    Reply::json(404, &body, None).into_response("00000000-0000-0000-0000-000000000000")
}

/// `POST /auth/o2/token`: Login with Amazon's refresh-token grant. Accepts the form body the JS
/// helper sends and the JSON body the Java SDK sends. Never logs the secrets it receives.
async fn lwa_token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let outage = {
        let mut state = shared.lock();
        let down = state.lwa_outages > 0;
        state.lwa_outages = state.lwa_outages.saturating_sub(1);
        down
    };
    let (status, answer) = if outage {
        lwa_error(
            500,
            "server_error",
            "The server encountered an internal error.",
        )
    } else {
        lwa_answer(&shared, &headers, &body)
    };
    {
        let mut state = shared.lock();
        state.stats.lwa_requests += 1;
        if status != 200 {
            state.stats.lwa_failures += 1;
        }
    }
    tracing::info!(path = "/auth/o2/token", status, "lwa request");
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response_headers = HeaderMap::new();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    (status, response_headers, answer.to_string()).into_response()
}

fn lwa_error(status: u16, error: &str, description: &str) -> (u16, Value) {
    (
        status,
        json!({"error": error, "error_description": description}),
    )
}

fn lwa_answer(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> (u16, Value) {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"))
        || body.trim_ascii_start().starts_with(b"{");
    let fields: Vec<(String, String)> = if is_json {
        match serde_json::from_slice::<serde_json::Map<String, Value>>(body) {
            Ok(map) => map
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string())))
                .collect(),
            Err(_) => {
                return lwa_error(
                    400,
                    "invalid_request",
                    "The request body is not valid JSON.",
                );
            }
        }
    } else {
        form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let (Some(grant_type), Some(client_id), Some(client_secret)) = (
        field("grant_type"),
        field("client_id"),
        field("client_secret"),
    ) else {
        return lwa_error(
            400,
            "invalid_request",
            "The request is missing a required parameter : grant_type, client_id or client_secret",
        );
    };
    if grant_type != "refresh_token" {
        return lwa_error(
            400,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server",
        );
    }
    let Some(refresh_token) = field("refresh_token") else {
        return lwa_error(
            400,
            "invalid_request",
            "The request is missing a required parameter : refresh_token",
        );
    };
    if client_id != shared.config.client_id || client_secret != shared.config.client_secret {
        return lwa_error(401, "invalid_client", "Client authentication failed");
    }
    let mut state = shared.lock();
    let Some(seller_id) = state.grants.get(refresh_token).cloned() else {
        return lwa_error(
            400,
            "invalid_grant",
            "The request has an invalid grant parameter : refresh_token",
        );
    };
    let ttl = shared.config.access_token_ttl;
    let access_token = state.issue_access_token(refresh_token, &seller_id, ttl);
    (
        200,
        json!({
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": ttl.as_secs(),
            "refresh_token": refresh_token,
        }),
    )
}
