//! The HTTP surface: the axum router (LWA, the four Orders operations, the Reports API and its
//! S3-style document URL) and the Orders handlers, which parse the query and hand the operation
//! to `pipeline::serve_op`. Nothing here validates or renders; `api` does that, under the lock.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::Utc;

use crate::api::{self, ApiError, Paging, Params};
use crate::lwa::lwa_token;
use crate::pipeline::{serve_op, unknown_route_response};
use crate::state::Shared;
use crate::{SimOp, report};

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
        .route(
            "/reports/2021-06-30/reports",
            post(report::routes::create_report),
        )
        .route(
            "/reports/2021-06-30/reports/{report_id}",
            get(report::routes::get_report),
        )
        .route(
            "/reports/2021-06-30/documents/{document_id}",
            get(report::routes::get_report_document),
        )
        .route("/sim-s3/{document_id}", get(report::s3::download))
        .fallback(unknown_route)
        .with_state(shared)
}

async fn get_orders_v0(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref().unwrap_or(""));
    let paging = Paging {
        page_size: shared.config.orders_page_default,
        token_ttl: shared.config.page_token_ttl_v0,
    };
    serve_op(
        shared.clone(),
        SimOp::GetOrdersV0,
        &uri,
        &headers,
        200,
        |state, seller| api::get_orders_v0(&params, state.orders.get(seller), paging, Utc::now()),
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
    let paging = Paging {
        page_size: shared.config.items_page_size,
        token_ttl: shared.config.page_token_ttl_v0,
    };
    serve_op(
        shared.clone(),
        SimOp::GetOrderItemsV0,
        &uri,
        &headers,
        200,
        |state, seller| {
            let order_id = path_order_id(order_id)?;
            api::get_order_items_v0(
                &params,
                &order_id,
                state.orders.get(seller),
                paging,
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
    let paging = Paging {
        page_size: shared.config.orders_page_default,
        token_ttl: shared.config.page_token_ttl_v2026,
    };
    serve_op(
        shared.clone(),
        SimOp::SearchOrders,
        &uri,
        &headers,
        200,
        |state, seller| api::search_orders(&params, state.orders.get(seller), paging, Utc::now()),
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
        200,
        |state, seller| {
            let order_id = path_order_id(order_id)?;
            api::get_order(&params, &order_id, state.orders.get(seller))
        },
    )
    .await
}

/// A path segment that does not percent-decode to UTF-8 is the client's fault: Amazon-style 400.
pub(crate) fn path_order_id(
    extracted: Result<Path<String>, PathRejection>,
) -> Result<String, ApiError> {
    extracted
        .map(|Path(order_id)| order_id)
        .map_err(|_| ApiError::invalid("Invalid Input", "orderId"))
}

async fn unknown_route(uri: Uri) -> Response {
    tracing::info!(path = uri.path(), status = 404, "unknown route");
    unknown_route_response()
}
