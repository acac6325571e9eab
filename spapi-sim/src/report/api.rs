//! The three Reports operations proper: createReport body validation with Amazon's rules, and the
//! JSON of getReport and getReportDocument. Synchronous, run under the state lock by
//! `pipeline::serve_op`; transport (auth, buckets, faults) is not its business.

use std::time::Instant;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Map, Value, json};

use super::queue::{Record, Refusal, ReportSpec, ReportType};
use crate::api::{ApiError, parse_iso8601};
use crate::state::State;

/// Report windows longer than this are refused (REPORTS.md, #2591).
const MAX_WINDOW: TimeDelta = TimeDelta::days(30);
/// Order reports look back at most two years.
const MAX_LOOK_BACK: TimeDelta = TimeDelta::days(730);

fn not_found(what: &str, id: &str) -> ApiError {
    ApiError {
        status: 404,
        code: "NotFound",
        message: format!("The {what} {id} does not exist."),
        details: String::new(),
    }
}

fn quota_exceeded() -> ApiError {
    ApiError {
        status: 429,
        code: "QuotaExceeded",
        message: "You exceeded your quota for the requested resource.".into(),
        details: String::new(),
    }
}

/// Dates as Amazon's Reports API prints them: `+00:00`, fractions only when there are some.
fn report_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

fn date_field(body: &Map<String, Value>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(raw)) => parse_iso8601(raw).map(Some).ok_or_else(|| {
            ApiError::invalid(format!("{name} is not a valid ISO 8601 date-time."), name)
        }),
        Some(_) => Err(ApiError::invalid(format!("{name} must be a string."), name)),
    }
}

/// Validates a createReport body against the model and the all-orders reports' rules.
pub fn parse_spec(body: &[u8], now: DateTime<Utc>) -> Result<ReportSpec, ApiError> {
    let body: Map<String, Value> = serde_json::from_slice(body).map_err(|_| {
        ApiError::invalid("Invalid input", "The request body is not a JSON object.")
    })?;
    let report_type = match body.get("reportType") {
        Some(Value::String(name)) => name.as_str(),
        _ => {
            return Err(ApiError::invalid(
                "reportType is required and must be a string.",
                "reportType",
            ));
        }
    };
    let marketplace_ids: Vec<String> = match body.get("marketplaceIds") {
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|id| id.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                ApiError::invalid(
                    "marketplaceIds must be an array of strings.",
                    "marketplaceIds",
                )
            })?,
        _ => {
            return Err(ApiError::invalid(
                "marketplaceIds is required and must be an array of strings.",
                "marketplaceIds",
            ));
        }
    };
    if marketplace_ids.is_empty() || marketplace_ids.len() > 25 {
        return Err(ApiError::invalid(
            "marketplaceIds must contain between 1 and 25 values.",
            "marketplaceIds",
        ));
    }
    match body.get("reportOptions") {
        None | Some(Value::Null) => {}
        Some(Value::Object(options)) if options.values().all(Value::is_string) => {}
        Some(_) => {
            return Err(ApiError::invalid(
                "reportOptions must be an object of string values.",
                "reportOptions",
            ));
        }
    }
    let report_type = ReportType::parse(report_type).ok_or_else(|| {
        ApiError::invalid(format!("Invalid reportType {report_type}."), "reportType")
    })?;
    // Both default to now (model).
    let data_start = date_field(&body, "dataStartTime")?.unwrap_or(now);
    let data_end = date_field(&body, "dataEndTime")?.unwrap_or(now);
    for (name, at) in [("dataStartTime", data_start), ("dataEndTime", data_end)] {
        if at > now {
            return Err(ApiError::invalid(
                format!("{name} must be prior to or equal to the current date and time."),
                name,
            ));
        }
    }
    if data_end < data_start {
        return Err(ApiError::invalid(
            "dataEndTime must be equal to or after dataStartTime.",
            "dataEndTime",
        ));
    }
    if data_end - data_start > MAX_WINDOW {
        return Err(ApiError::invalid(
            "Date range exceeded. Report can be requested only upto 30 days",
            "dataStartTime",
        ));
    }
    if data_start < now - MAX_LOOK_BACK {
        return Err(ApiError::invalid(
            "dataStartTime must be within the last 2 years.",
            "dataStartTime",
        ));
    }
    Ok(ReportSpec {
        report_type,
        marketplace_ids,
        data_start,
        data_end,
    })
}

/// createReport: 202 `{"reportId"}`, or 429 when the report type's hidden quota is used up.
pub fn create_report(state: &mut State, seller: &str, body: &[u8]) -> Result<Value, ApiError> {
    let spec = parse_spec(body, Utc::now())?;
    let now = Instant::now();
    state.advance_reports();
    let report_id = match state.reports.create(seller, spec, now, &mut state.rng) {
        Ok(id) => id,
        Err(Refusal::TypeQuotaExceeded) => return Err(quota_exceeded()),
    };
    // The queue may be free: start it now rather than at the next look.
    state.advance_reports();
    Ok(json!({ "reportId": report_id }))
}

fn report_json(record: &Record) -> Value {
    let mut out = Map::new();
    out.insert("reportId".into(), json!(record.id));
    out.insert("reportType".into(), json!(record.spec.report_type.name()));
    out.insert(
        "dataStartTime".into(),
        json!(report_time(record.spec.data_start)),
    );
    out.insert(
        "dataEndTime".into(),
        json!(report_time(record.spec.data_end)),
    );
    out.insert("marketplaceIds".into(), json!(record.spec.marketplace_ids));
    out.insert("createdTime".into(), json!(report_time(record.created_utc)));
    out.insert("processingStatus".into(), json!(record.status.as_str()));
    if let Some(start) = record.processing_start() {
        out.insert("processingStartTime".into(), json!(report_time(start)));
    }
    if let Some(end) = record.processing_end() {
        out.insert("processingEndTime".into(), json!(report_time(end)));
    }
    if let Some(document_id) = &record.document_id {
        out.insert("reportDocumentId".into(), json!(document_id));
    }
    Value::Object(out)
}

/// getReport: the Report object, 404 for an unknown id or another seller's.
pub fn get_report(state: &mut State, seller: &str, report_id: &str) -> Result<Value, ApiError> {
    state.advance_reports();
    state
        .reports
        .report(seller, report_id)
        .map(report_json)
        .ok_or_else(|| not_found("report", report_id))
}

/// getReportDocument: `{reportDocumentId, url, compressionAlgorithm}` with a fresh presigned URL.
pub fn get_report_document(
    state: &mut State,
    seller: &str,
    document_id: &str,
    content_encoding_flag: Option<&str>,
    base_url: &str,
) -> Result<Value, ApiError> {
    let content_encoding_gzip = match content_encoding_flag {
        None => false,
        Some(flag) if flag.eq_ignore_ascii_case("true") => true,
        Some(flag) if flag.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            return Err(ApiError::invalid(
                "enableContentEncodingUrlHeader must be true or false.",
                "enableContentEncodingUrlHeader",
            ));
        }
    };
    state.advance_reports();
    if state.reports.seller_document(seller, document_id).is_none() {
        return Err(not_found("report document", document_id));
    }
    let now = Instant::now();
    let (signature, presigned) =
        state
            .reports
            .presign(document_id, content_encoding_gzip, now, &mut state.rng);
    let issued =
        presigned.expires_utc - chrono::Duration::from_std(presigned.ttl).unwrap_or_default();
    // Looks like an S3 presigned URL; only the signature matters to the sim. Use it verbatim.
    let url = format!(
        "{base_url}/sim-s3/{document_id}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={}&X-Amz-SignedHeaders=host&X-Amz-Expires={}&X-Amz-Credential=ASIASIMULATOR%2F{}%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Signature={signature}",
        issued.format("%Y%m%dT%H%M%SZ"),
        presigned.ttl.as_secs_f64().ceil() as u64,
        issued.format("%Y%m%d"),
    );
    Ok(json!({
        "reportDocumentId": document_id,
        "url": url,
        "compressionAlgorithm": "GZIP",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(body: Value) -> Result<ReportSpec, ApiError> {
        parse_spec(body.to_string().as_bytes(), Utc::now())
    }

    fn error(body: Value) -> String {
        let error = spec(body).expect_err("must be refused");
        assert_eq!((error.status, error.code), (400, "InvalidInput"));
        format!("{} {}", error.message, error.details)
    }

    #[test]
    fn create_report_rules() {
        let now = Utc::now();
        let iso = |at: DateTime<Utc>| at.to_rfc3339();
        let ok = json!({
            "reportType": "GET_XML_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
            "marketplaceIds": ["A13V1IB3VIYZZH"],
            "dataStartTime": iso(now - TimeDelta::days(30)),
            "dataEndTime": iso(now - TimeDelta::hours(1)),
            "reportOptions": {"ShowSalesChannel": "true"},
        });
        assert!(spec(ok.clone()).is_ok());
        let with = |key: &str, value: Value| {
            let mut body = ok.clone();
            body[key] = value;
            body
        };
        assert!(
            error(with("reportType", json!("GET_FLAT_FILE_ORDERS_DATA"))).contains("reportType")
        );
        assert!(error(with("marketplaceIds", json!([]))).contains("marketplaceIds"));
        assert!(error(with("marketplaceIds", json!(vec!["X"; 26]))).contains("between 1 and 25"));
        assert!(error(with("dataEndTime", json!("tomorrow"))).contains("dataEndTime"));
        assert!(error(with("reportOptions", json!({"a": 1}))).contains("reportOptions"));
        assert!(
            error(with("dataStartTime", json!(iso(now - TimeDelta::days(31)))))
                .contains("upto 30 days")
        );
        assert!(
            error(with("dataEndTime", json!(iso(now - TimeDelta::days(31)))))
                .contains("after dataStartTime")
        );
        assert!(
            error(with("dataEndTime", json!(iso(now + TimeDelta::hours(1)))))
                .contains("current date and time")
        );
        let old = json!({
            "reportType": "GET_XML_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL",
            "marketplaceIds": ["A13V1IB3VIYZZH"],
            "dataStartTime": iso(now - TimeDelta::days(800)),
            "dataEndTime": iso(now - TimeDelta::days(790)),
        });
        assert!(error(old).contains("2 years"));
        assert!(parse_spec(b"not json", now).is_err());
    }
}
