//! Login with Amazon's token endpoint (`POST /auth/o2/token`, refresh-token grant): credential
//! checks, outages injected with `SimHandle::fail_lwa`, and the access tokens it issues. It never
//! logs the secrets it receives.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::state::Shared;

/// `POST /auth/o2/token`: Login with Amazon's refresh-token grant. Accepts the form body the JS
/// helper sends and the JSON body the Java SDK sends. Never logs the secrets it receives.
pub(crate) async fn lwa_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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
    // Whole seconds, rounded up, so a sub-second test lifetime never advertises 0.
    let expires_in = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    (
        200,
        json!({
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": expires_in,
            "refresh_token": refresh_token,
        }),
    )
}
