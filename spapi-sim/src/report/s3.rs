//! The presigned document URL, `GET /sim-s3/{reportDocumentId}?X-Amz-...&X-Amz-Signature=...`.
//! It behaves like S3, not like SP-API: no access token, no usage plan, S3's XML error bodies.
//!
//! S3's refusals (REPORTS.md): 400 InvalidArgument when an `Authorization` header adds a second
//! auth mechanism, 403 SignatureDoesNotMatch for a URL the sim did not hand out, 403 AccessDenied
//! "Request has expired" past the URL's lifetime, 403 AccessDenied with `HeadersNotSigned` when
//! the request carries `x-amz-*` headers (such as `x-amz-access-token`). Faults aimed at
//! `SimOp::DownloadDocument` apply after those checks, with S3-style bodies.
//!
//! The document is streamed from its stored slices; this module never copies it whole, except
//! for the truncated-body fault.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures_util::StreamExt;

use super::document::Document;
use super::xml::escape;
use crate::api::Params;
use crate::pipeline::{html_page, huge_response, record};
use crate::state::{Shared, State as World};
use crate::{FaultKind, SimOp};

/// An S3 error answer.
struct S3Error {
    status: u16,
    code: &'static str,
    message: &'static str,
    /// Extra elements, already escaped.
    extra: String,
}

impl S3Error {
    fn new(status: u16, code: &'static str, message: &'static str) -> S3Error {
        S3Error {
            status,
            code,
            message,
            extra: String::new(),
        }
    }

    fn for_status(status: u16) -> S3Error {
        match status {
            400 => S3Error::new(400, "InvalidRequest", "Invalid Request"),
            403 => S3Error::new(403, "AccessDenied", "Access Denied"),
            404 => S3Error::new(404, "NoSuchKey", "The specified key does not exist."),
            503 => S3Error::new(503, "SlowDown", "Please reduce your request rate."),
            _ => S3Error::new(
                status,
                "InternalError",
                "We encountered an internal error. Please try again.",
            ),
        }
    }

    fn into_response(self, request_id: &str) -> Response {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message>{}<RequestId>{request_id}</RequestId><HostId>c2ltLXMzLWhvc3Q=</HostId></Error>",
            self.code, self.message, self.extra
        );
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, s3_headers(request_id, "application/xml"), body).into_response()
    }
}

fn s3_headers(request_id: &str, content_type: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amz-request-id", value);
    }
    headers
}

/// What a good URL gives access to.
struct Grant {
    document: Arc<Document>,
    content_encoding_gzip: bool,
}

fn check(
    world: &World,
    document_id: Option<&str>,
    params: &Params,
    headers: &HeaderMap,
) -> Result<Grant, S3Error> {
    if headers.contains_key(header::AUTHORIZATION) {
        let mut error = S3Error::new(
            400,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
        );
        error.extra = "<ArgumentName>Authorization</ArgumentName>".into();
        return Err(error);
    }
    let Ok(Some(signature)) = params.get("X-Amz-Signature") else {
        return Err(S3Error::for_status(403));
    };
    let presigned = world
        .reports
        .presigned(signature)
        .filter(|presigned| Some(presigned.document_id.as_str()) == document_id)
        .ok_or_else(|| {
            S3Error::new(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            )
        })?;
    if Instant::now() >= presigned.expires_at {
        let mut error = S3Error::new(403, "AccessDenied", "Request has expired");
        error.extra = format!(
            "<X-Amz-Expires>{}</X-Amz-Expires><Expires>{}</Expires><ServerTime>{}</ServerTime>",
            presigned.ttl.as_secs_f64().ceil() as u64,
            presigned.expires_utc.format("%Y-%m-%dT%H:%M:%SZ"),
            Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
        );
        return Err(error);
    }
    let unsigned: Vec<&str> = headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| name.starts_with("x-amz-"))
        .collect();
    if !unsigned.is_empty() {
        let mut error = S3Error::new(
            403,
            "AccessDenied",
            "There were headers present in the request which were not signed",
        );
        error.extra = format!(
            "<HeadersNotSigned>{}</HeadersNotSigned>",
            escape(&unsigned.join(", "))
        );
        return Err(error);
    }
    let document = world
        .reports
        .document(&presigned.document_id)
        .ok_or_else(|| S3Error::for_status(404))?;
    Ok(Grant {
        document,
        content_encoding_gzip: presigned.content_encoding_gzip,
    })
}

fn document_response(request_id: &str, grant: &Grant, body: Body, length: u64) -> Response {
    let mut headers = s3_headers(request_id, "application/octet-stream");
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if grant.content_encoding_gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    (StatusCode::OK, headers, body).into_response()
}

/// `GET /sim-s3/{reportDocumentId}`.
pub(crate) async fn download(
    State(shared): State<Arc<Shared>>,
    document_id: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let op = SimOp::DownloadDocument;
    let params = Params::parse(query.as_deref().unwrap_or(""));
    let document_id = document_id.ok().map(|Path(id)| id);
    let (record_index, request_id, outcome) = {
        let mut world = shared.lock();
        let index = record(&mut world, op, &uri);
        let request_id = format!("{:016X}", world.rng.next_u64());
        let outcome = check(&world, document_id.as_deref(), &params, &headers);
        (index, request_id, outcome)
    };
    let finish = |status: u16, response: Response| -> Response {
        shared.lock().requests[record_index].status = status;
        tracing::info!(?op, path = uri.path(), status, "s3 request");
        response
    };
    let grant = match outcome {
        Ok(grant) => grant,
        Err(error) => return finish(error.status, error.into_response(&request_id)),
    };

    let fault = shared.lock().take_fault(op);
    let length = grant.document.len();
    match fault {
        None | Some(FaultKind::RepeatPageToken) => {}
        Some(FaultKind::Status(status)) => {
            return finish(
                status,
                S3Error::for_status(status).into_response(&request_id),
            );
        }
        Some(FaultKind::HtmlStatus(status)) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let response = (
                code,
                s3_headers(&request_id, "text/html"),
                html_page(status),
            )
                .into_response();
            return finish(status, response);
        }
        Some(FaultKind::TruncatedBody) => {
            let cut = grant.document.prefix(length / 2);
            let cut_length = cut.len() as u64;
            let response = document_response(&request_id, &grant, Body::from(cut), cut_length);
            return finish(200, response);
        }
        Some(FaultKind::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(FaultKind::Hang) => tokio::time::sleep(Duration::from_secs(3600)).await,
        Some(FaultKind::HugeBody(total)) => {
            let response = huge_response(op, total, true, "application/octet-stream", &request_id);
            return finish(200, response);
        }
        Some(FaultKind::HugeBodyChunked(total)) => {
            let response = huge_response(op, total, false, "application/octet-stream", &request_id);
            return finish(200, response);
        }
        Some(FaultKind::StallAfter(sent)) => {
            let head = Bytes::from(grant.document.prefix(sent.min(length)));
            let stalled = futures_util::stream::once(async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<_, Infallible>(Bytes::new())
            });
            let body = Body::from_stream(
                futures_util::stream::iter([Ok::<_, Infallible>(head)]).chain(stalled),
            );
            return finish(200, document_response(&request_id, &grant, body, length));
        }
    }
    let slices = grant.document.slices();
    let body = Body::from_stream(futures_util::stream::iter(
        slices.into_iter().map(Ok::<_, Infallible>),
    ));
    finish(200, document_response(&request_id, &grant, body, length))
}
