//! axum handlers for createReport, getReport and getReportDocument: extract the path, query and
//! body, then hand the operation to `pipeline::serve_op` (auth, fault, bucket) and `report::api`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;

use super::api;
use crate::SimOp;
use crate::api::{ApiError, Params};
use crate::pipeline::serve_op;
use crate::state::Shared;

/// A path segment that does not percent-decode to UTF-8: Amazon-style 400.
fn path_id(extracted: Result<Path<String>, PathRejection>, name: &str) -> Result<String, ApiError> {
    extracted
        .map(|Path(id)| id)
        .map_err(|_| ApiError::invalid("Invalid Input", name))
}

/// `POST /reports/2021-06-30/reports`.
pub(crate) async fn create_report(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve_op(
        shared.clone(),
        SimOp::CreateReport,
        &uri,
        &headers,
        202,
        |state, seller| api::create_report(state, seller, &body),
    )
    .await
}

/// `GET /reports/2021-06-30/reports/{reportId}`.
pub(crate) async fn get_report(
    State(shared): State<Arc<Shared>>,
    report_id: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    serve_op(
        shared.clone(),
        SimOp::GetReport,
        &uri,
        &headers,
        200,
        |state, seller| {
            let report_id = path_id(report_id, "reportId")?;
            api::get_report(state, seller, &report_id)
        },
    )
    .await
}

/// `GET /reports/2021-06-30/documents/{reportDocumentId}`.
pub(crate) async fn get_report_document(
    State(shared): State<Arc<Shared>>,
    document_id: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref().unwrap_or(""));
    let base_url = shared.base_url.clone();
    serve_op(
        shared.clone(),
        SimOp::GetReportDocument,
        &uri,
        &headers,
        200,
        |state, seller| {
            let document_id = path_id(document_id, "reportDocumentId")?;
            let flag = params.get("enableContentEncodingUrlHeader")?;
            api::get_report_document(state, seller, &document_id, flag, &base_url)
        },
    )
    .await
}
