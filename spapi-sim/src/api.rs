//! The four Orders operations proper: query-parameter validation with Amazon's rules and messages,
//! filtering, sorting, keyset pagination with tokens, and the response envelopes (v0 `payload`,
//! v2026 bare). Everything here is synchronous and runs under the state lock; transport concerns
//! (auth, buckets, faults, headers) live in `server`.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::model::{SimOrder, time_string};
use crate::render::{self, INCLUDED_DATA_VALUES, Included};
use crate::seed::fnv1a64;
use crate::token::{PageToken, TokenKind};

/// A 400 or 404 with Amazon's `{"errors":[...]}` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub details: String,
}

impl ApiError {
    pub fn invalid(message: impl Into<String>, details: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            code: "InvalidInput",
            message: message.into(),
            details: details.into(),
        }
    }

    fn not_found(order_id: &str) -> ApiError {
        ApiError {
            status: 404,
            code: "NotFound",
            message: format!("Order {order_id} was not found."),
            details: String::new(),
        }
    }

    pub fn body(&self) -> Value {
        json!({"errors": [{"code": self.code, "message": self.message, "details": self.details}]})
    }
}

pub const TWO_MINUTE_MESSAGE: &str = "The input you have submitted is not valid. Note that the error may be due to a systematic delay in data retrieval. The most updated data is 2 minutes after an order is created or last updated. If you set the CreatedBefore or LastUpdatedBefore parameters, please provide a date that is at least 2 minutes before current time and try again.";
pub const UNDECODABLE_TOKEN_MESSAGE: &str = "We could not decode your NextToken. Possible reasons include: a transmission error, improper quoting or a truncation problem.";

/// How one operation pages: its (default) page size and how long its tokens live (`None`: forever).
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub page_size: usize,
    pub token_ttl: Option<Duration>,
}

/// Decoded query parameters. Parsed by hand so that `+` means space (as on Amazon) and so that a
/// parameter sent twice is an Amazon-style 400, not silently one of the two.
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn parse(raw_query: &str) -> Params {
        Params {
            pairs: form_urlencoded::parse(raw_query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// The single value of `name`; `Ok(None)` when absent.
    pub fn get(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::invalid(
                format!("{name} was given more than once; array parameters are comma-separated."),
                name,
            ));
        }
        Ok(first.map(String::as_str))
    }

    /// A comma-separated array parameter; an empty value counts as absent.
    fn list(&self, name: &str, max: usize) -> Result<Option<Vec<String>>, ApiError> {
        let Some(raw) = self.get(name)? else {
            return Ok(None);
        };
        if raw.is_empty() {
            return Ok(None);
        }
        let values: Vec<String> = raw.split(',').map(|v| v.trim().to_string()).collect();
        if values.iter().any(String::is_empty) {
            return Err(ApiError::invalid(
                format!("{name} contains an empty value."),
                name,
            ));
        }
        if values.len() > max {
            return Err(ApiError::invalid(
                format!("{name} accepts at most {max} values."),
                name,
            ));
        }
        Ok(Some(values))
    }

    fn list_of(&self, name: &str, allowed: &[&str]) -> Result<Option<Vec<String>>, ApiError> {
        let values = self.list(name, allowed.len().max(50))?;
        if let Some(values) = &values
            && let Some(bad) = values.iter().find(|v| !allowed.contains(&v.as_str()))
        {
            return Err(ApiError::invalid(
                format!("{bad} is not a valid value for {name}."),
                name,
            ));
        }
        Ok(values)
    }

    fn date(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        let Some(raw) = self.get(name)? else {
            return Ok(None);
        };
        parse_iso8601(raw).map(Some).ok_or_else(|| {
            ApiError::invalid("Invalid Input", format!("Invalid date/time field [{name}]"))
        })
    }

    fn page_size(&self, name: &str, default: usize) -> Result<usize, ApiError> {
        match self.get(name)? {
            None => Ok(default),
            Some(raw) => match raw.parse::<usize>() {
                Ok(size) if (1..=100).contains(&size) => Ok(size),
                _ => Err(ApiError::invalid(
                    format!("{name} must be an integer between 1 and 100."),
                    name,
                )),
            },
        }
    }
}

/// ISO 8601 as Amazon accepts it: RFC 3339 with `Z` or an offset; a zone-less time is taken as UTC.
pub(crate) fn parse_iso8601(raw: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Some(at.with_timezone(&Utc));
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(raw, format).ok())
    .map(|naive| naive.and_utc())
}

fn floor_to_second(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

/// Which date an orders query filters and sorts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateField {
    Created,
    LastUpdated,
}

impl DateField {
    fn of(self, order: &SimOrder) -> DateTime<Utc> {
        match self {
            DateField::Created => order.purchase_date,
            DateField::LastUpdated => order.last_update_date,
        }
    }
}

/// The date window of a getOrders/searchOrders request after the exactly-one / no-mixing /
/// ordering / 2-minute rules. `names` are the version's parameter names:
/// [createdAfter, createdBefore, lastUpdatedAfter, lastUpdatedBefore].
struct Window {
    field: DateField,
    after: DateTime<Utc>,
    /// As given by the client; `None` means "now − 2 minutes" (or the bound saved in the token).
    before: Option<DateTime<Utc>>,
}

fn date_window(params: &Params, names: [&str; 4], now: DateTime<Utc>) -> Result<Window, ApiError> {
    let [
        created_after_name,
        created_before_name,
        updated_after_name,
        updated_before_name,
    ] = names;
    let created_after = params.date(created_after_name)?;
    let created_before = params.date(created_before_name)?;
    let updated_after = params.date(updated_after_name)?;
    let updated_before = params.date(updated_before_name)?;
    let (field, after, before, before_name) = match (created_after, updated_after) {
        (None, None) => {
            return Err(ApiError::invalid(
                format!(
                    "Either {created_after_name} or {updated_after_name} is required. Both cannot be empty."
                ),
                created_after_name,
            ));
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                format!(
                    "{created_after_name} and {updated_after_name} cannot both be set; provide exactly one."
                ),
                updated_after_name,
            ));
        }
        (Some(after), None) => {
            if updated_before.is_some() {
                return Err(ApiError::invalid(
                    format!(
                        "{updated_before_name} cannot be set when {created_after_name} is set."
                    ),
                    updated_before_name,
                ));
            }
            (
                DateField::Created,
                after,
                created_before,
                created_before_name,
            )
        }
        (None, Some(after)) => {
            if created_before.is_some() {
                return Err(ApiError::invalid(
                    format!(
                        "{created_before_name} cannot be set when {updated_after_name} is set."
                    ),
                    created_before_name,
                ));
            }
            (
                DateField::LastUpdated,
                after,
                updated_before,
                updated_before_name,
            )
        }
    };
    if let Some(before) = before {
        if before < after {
            return Err(ApiError::invalid(
                format!(
                    "{before_name} must be equal to or after the {} date.",
                    match field {
                        DateField::Created => created_after_name,
                        DateField::LastUpdated => updated_after_name,
                    }
                ),
                before_name,
            ));
        }
        if before > now - TimeDelta::minutes(2) {
            return Err(ApiError::invalid(TWO_MINUTE_MESSAGE, before_name));
        }
    }
    Ok(Window {
        field,
        after,
        before,
    })
}

/// Stable text for a fingerprint: parameter names with normalised values.
fn fingerprint(parts: &[(&str, String)]) -> u64 {
    let text: Vec<String> = parts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    fnv1a64(text.join("&").as_bytes())
}

fn date_key(at: Option<DateTime<Utc>>) -> String {
    at.map(|at| {
        at.timestamp_nanos_opt()
            .unwrap_or(at.timestamp())
            .to_string()
    })
    .unwrap_or_default()
}

fn list_key(values: &Option<Vec<String>>) -> String {
    values.as_ref().map(|v| v.join(",")).unwrap_or_default()
}

/// Validates a pagination token against the kind and fingerprint of the current request. The
/// repeating token (see `PageToken::repeating`) passes whatever the filters and age.
fn check_token(
    raw: Option<&str>,
    kind: TokenKind,
    expected_fingerprint: u64,
    name: &str,
    undecodable_message: &str,
    now: DateTime<Utc>,
    ttl: Option<Duration>,
) -> Result<Option<PageToken>, ApiError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let token = PageToken::decode(raw)
        .filter(|token| token.kind == kind)
        .ok_or_else(|| ApiError::invalid(undecodable_message, name))?;
    if token.is_repeating() {
        return Ok(Some(token));
    }
    if token.fingerprint != expected_fingerprint {
        return Err(ApiError::invalid(
            format!(
                "{name} was issued for different request parameters. Send the same parameters as the request that returned it."
            ),
            name,
        ));
    }
    if let Some(ttl) = ttl {
        let age_ms = now.timestamp_millis().saturating_sub(token.issued_at_ms);
        if age_ms > i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX) {
            return Err(ApiError::invalid(
                format!(
                    "{name} has expired; tokens are valid for {}. Request the first page again.",
                    describe_ttl(ttl)
                ),
                name,
            ));
        }
    }
    Ok(Some(token))
}

/// "24 hours", "1 second", "1500 milliseconds": for the expired-token message.
fn describe_ttl(ttl: Duration) -> String {
    let plural =
        |count: u128, unit: &str| format!("{count} {unit}{}", if count == 1 { "" } else { "s" });
    let ms = ttl.as_millis();
    if ms.is_multiple_of(3_600_000) && ms > 0 {
        plural(ms / 3_600_000, "hour")
    } else if ms.is_multiple_of(1000) {
        plural(ms / 1000, "second")
    } else {
        plural(ms, "millisecond")
    }
}

/// The versions of the seller's orders that searches see at `now` (late indexing, see
/// `SimOrder::indexed_at`).
fn visible(
    orders: Option<&BTreeMap<String, SimOrder>>,
    now: DateTime<Utc>,
) -> impl Iterator<Item = &SimOrder> {
    orders
        .into_iter()
        .flat_map(|o| o.values())
        .filter_map(move |order| order.visible_at(now))
}

/// One page of orders after filtering and keyset pagination, plus the token for the next page.
struct OrdersPage<'a> {
    orders: Vec<&'a SimOrder>,
    next_token: Option<String>,
    upper_bound: DateTime<Utc>,
}

fn page_orders<'a>(
    matching: impl Iterator<Item = &'a SimOrder>,
    window: &Window,
    token: Option<&PageToken>,
    page_size: usize,
    kind: TokenKind,
    fingerprint: u64,
    now: DateTime<Utc>,
) -> OrdersPage<'a> {
    // The repeating token asks for the first page again, answered with itself.
    let repeating = token.filter(|t| t.is_repeating()).cloned();
    let token = token.filter(|t| !t.is_repeating());
    // The window's upper bound is fixed by the first page so that later pages see the same set.
    let upper_bound = window
        .before
        .or_else(|| token.and_then(|t| DateTime::from_timestamp(t.upper_bound, 0)))
        .unwrap_or_else(|| floor_to_second(now - TimeDelta::minutes(2)));
    let field = window.field;
    let mut rows: Vec<&SimOrder> = matching
        .filter(|order| {
            let at = field.of(order);
            window.after <= at && at <= upper_bound
        })
        .filter(|order| match token {
            None => true,
            Some(token) => {
                (field.of(order).timestamp(), order.order_id.as_str())
                    > (token.cursor_secs, token.cursor_key.as_str())
            }
        })
        .collect();
    rows.sort_by(|a, b| (field.of(a), &a.order_id).cmp(&(field.of(b), &b.order_id)));
    let has_more = rows.len() > page_size;
    rows.truncate(page_size);
    let next_token = match (has_more, rows.last()) {
        (true, Some(last)) => Some(
            PageToken {
                kind,
                fingerprint,
                upper_bound: upper_bound.timestamp(),
                // Each token's lifetime runs from its own issue, like Amazon's.
                issued_at_ms: now.timestamp_millis(),
                cursor_secs: field.of(last).timestamp(),
                cursor_key: last.order_id.clone(),
            }
            .encode(),
        ),
        _ => None,
    };
    let next_token = match repeating {
        Some(repeating) => Some(repeating.encode()),
        None => next_token,
    };
    OrdersPage {
        orders: rows,
        next_token,
        upper_bound,
    }
}

const V0_STATUSES: [&str; 8] = [
    "PendingAvailability",
    "Pending",
    "Unshipped",
    "PartiallyShipped",
    "Shipped",
    "InvoiceUnconfirmed",
    "Canceled",
    "Unfulfillable",
];

/// v0 getOrders.
pub fn get_orders_v0(
    params: &Params,
    orders: Option<&BTreeMap<String, SimOrder>>,
    paging: Paging,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let marketplaces = params
        .list("MarketplaceIds", 50)?
        .ok_or_else(|| ApiError::invalid("MarketplaceIds is required.", "MarketplaceIds"))?;
    let window = date_window(
        params,
        [
            "CreatedAfter",
            "CreatedBefore",
            "LastUpdatedAfter",
            "LastUpdatedBefore",
        ],
        now,
    )?;
    let page_size = params.page_size("MaxResultsPerPage", paging.page_size)?;
    let statuses = params.list_of("OrderStatuses", &V0_STATUSES)?;
    let channels = params.list_of("FulfillmentChannels", &["AFN", "MFN"])?;
    let print = fingerprint(&[
        ("MarketplaceIds", marketplaces.join(",")),
        ("CreatedAfter", date_key(params.date("CreatedAfter")?)),
        ("CreatedBefore", date_key(params.date("CreatedBefore")?)),
        (
            "LastUpdatedAfter",
            date_key(params.date("LastUpdatedAfter")?),
        ),
        (
            "LastUpdatedBefore",
            date_key(params.date("LastUpdatedBefore")?),
        ),
        ("OrderStatuses", list_key(&statuses)),
        ("FulfillmentChannels", list_key(&channels)),
    ]);
    let token = check_token(
        params.get("NextToken")?,
        TokenKind::GetOrdersV0,
        print,
        "NextToken",
        UNDECODABLE_TOKEN_MESSAGE,
        now,
        paging.token_ttl,
    )?;
    let matching = visible(orders, now).filter(|order| {
        marketplaces.contains(&order.marketplace_id)
            && statuses
                .as_ref()
                .is_none_or(|s| s.iter().any(|s| s == order.status.v0_name()))
            && channels
                .as_ref()
                .is_none_or(|c| c.iter().any(|c| (c == "AFN") == order.fulfilled_by_amazon))
    });
    let page = page_orders(
        matching,
        &window,
        token.as_ref(),
        page_size,
        TokenKind::GetOrdersV0,
        print,
        now,
    );
    let mut payload = serde_json::Map::new();
    payload.insert(
        "Orders".into(),
        Value::Array(page.orders.iter().map(|o| render::v0_order(o)).collect()),
    );
    if let Some(next) = page.next_token {
        payload.insert("NextToken".into(), json!(next));
    }
    let bound_name = match window.field {
        DateField::Created => "CreatedBefore",
        DateField::LastUpdated => "LastUpdatedBefore",
    };
    payload.insert(bound_name.into(), json!(time_string(page.upper_bound)));
    Ok(json!({ "payload": payload }))
}

/// v0 getOrderItems.
pub fn get_order_items_v0(
    params: &Params,
    order_id: &str,
    orders: Option<&BTreeMap<String, SimOrder>>,
    paging: Paging,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let order = orders
        .and_then(|o| o.get(order_id))
        .ok_or_else(|| ApiError::not_found(order_id))?;
    let print = fingerprint(&[("orderId", order_id.to_string())]);
    let token = check_token(
        params.get("NextToken")?,
        TokenKind::GetOrderItemsV0,
        print,
        "NextToken",
        UNDECODABLE_TOKEN_MESSAGE,
        now,
        paging.token_ttl,
    )?;
    let repeating = token.as_ref().filter(|t| t.is_repeating()).cloned();
    let start = match &token {
        None => 0,
        Some(token) if token.is_repeating() => 0,
        Some(token) => token
            .cursor_key
            .parse::<usize>()
            .map_err(|_| ApiError::invalid(UNDECODABLE_TOKEN_MESSAGE, "NextToken"))?,
    };
    let page_size = paging.page_size.max(1);
    let items: Vec<Value> = order
        .items
        .iter()
        .skip(start)
        .take(page_size)
        .map(|item| render::v0_order_item(order, item))
        .collect();
    let mut payload = serde_json::Map::new();
    payload.insert("AmazonOrderId".into(), json!(order.order_id));
    payload.insert("OrderItems".into(), Value::Array(items));
    let next = start.saturating_add(page_size);
    if let Some(repeating) = repeating {
        payload.insert("NextToken".into(), json!(repeating.encode()));
    } else if next < order.items.len() {
        let token = PageToken {
            kind: TokenKind::GetOrderItemsV0,
            fingerprint: print,
            upper_bound: 0,
            issued_at_ms: now.timestamp_millis(),
            cursor_secs: 0,
            cursor_key: next.to_string(),
        };
        payload.insert("NextToken".into(), json!(token.encode()));
    }
    Ok(json!({ "payload": payload }))
}

fn included_data(params: &Params) -> Result<Included, ApiError> {
    let values = params
        .list_of("includedData", &INCLUDED_DATA_VALUES)?
        .unwrap_or_default();
    let set: HashSet<&str> = values.iter().map(String::as_str).collect();
    Ok(Included {
        buyer: set.contains("BUYER"),
        recipient: set.contains("RECIPIENT"),
        proceeds: set.contains("PROCEEDS"),
        fulfillment: set.contains("FULFILLMENT"),
    })
}

const V2026_STATUSES: [&str; 7] = [
    "PENDING_AVAILABILITY",
    "PENDING",
    "UNSHIPPED",
    "PARTIALLY_SHIPPED",
    "SHIPPED",
    "CANCELLED",
    "UNFULFILLABLE",
];

/// v2026 searchOrders.
pub fn search_orders(
    params: &Params,
    orders: Option<&BTreeMap<String, SimOrder>>,
    paging: Paging,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let window = date_window(
        params,
        [
            "createdAfter",
            "createdBefore",
            "lastUpdatedAfter",
            "lastUpdatedBefore",
        ],
        now,
    )?;
    let marketplaces = params.list("marketplaceIds", 50)?;
    let statuses = params.list_of("fulfillmentStatuses", &V2026_STATUSES)?;
    let fulfilled_by = params.list_of("fulfilledBy", &["MERCHANT", "AMAZON"])?;
    let page_size = params.page_size("maxResultsPerPage", paging.page_size)?;
    let included = included_data(params)?;
    // maxResultsPerPage and includedData may change between pages (model text); nothing else may.
    let print = fingerprint(&[
        ("createdAfter", date_key(params.date("createdAfter")?)),
        ("createdBefore", date_key(params.date("createdBefore")?)),
        (
            "lastUpdatedAfter",
            date_key(params.date("lastUpdatedAfter")?),
        ),
        (
            "lastUpdatedBefore",
            date_key(params.date("lastUpdatedBefore")?),
        ),
        ("marketplaceIds", list_key(&marketplaces)),
        ("fulfillmentStatuses", list_key(&statuses)),
        ("fulfilledBy", list_key(&fulfilled_by)),
    ]);
    let token = check_token(
        params.get("paginationToken")?,
        TokenKind::SearchOrders,
        print,
        "paginationToken",
        "We could not decode your paginationToken. Possible reasons include: a transmission error, improper quoting or a truncation problem.",
        now,
        paging.token_ttl,
    )?;
    let matching = visible(orders, now).filter(|order| {
        marketplaces
            .as_ref()
            .is_none_or(|m| m.contains(&order.marketplace_id))
            && statuses
                .as_ref()
                .is_none_or(|s| s.iter().any(|s| s == order.status.v2026_name()))
            && fulfilled_by.as_ref().is_none_or(|f| {
                f.iter()
                    .any(|f| (f == "AMAZON") == order.fulfilled_by_amazon)
            })
    });
    let page = page_orders(
        matching,
        &window,
        token.as_ref(),
        page_size,
        TokenKind::SearchOrders,
        print,
        now,
    );
    let mut out = serde_json::Map::new();
    out.insert(
        "orders".into(),
        Value::Array(
            page.orders
                .iter()
                .map(|o| render::v2026_order(o, included))
                .collect(),
        ),
    );
    if let Some(next) = page.next_token {
        out.insert("pagination".into(), json!({ "nextToken": next }));
    }
    let bound_name = match window.field {
        DateField::Created => "createdBefore",
        DateField::LastUpdated => "lastUpdatedBefore",
    };
    out.insert(bound_name.into(), json!(time_string(page.upper_bound)));
    Ok(Value::Object(out))
}

/// v2026 getOrder.
pub fn get_order(
    params: &Params,
    order_id: &str,
    orders: Option<&BTreeMap<String, SimOrder>>,
) -> Result<Value, ApiError> {
    let included = included_data(params)?;
    let order = orders
        .and_then(|o| o.get(order_id))
        .ok_or_else(|| ApiError::not_found(order_id))?;
    Ok(json!({ "order": render::v2026_order(order, included) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SimStatus;

    #[test]
    fn status_vocabularies_match_the_model() {
        for status in SimStatus::ALL {
            assert!(V0_STATUSES.contains(&status.v0_name()));
            assert!(V2026_STATUSES.contains(&status.v2026_name()));
        }
    }

    #[test]
    fn dates_accept_z_offsets_and_reject_mangled_plus() {
        assert!(parse_iso8601("2026-11-28T05:12:33Z").is_some());
        assert!(parse_iso8601("2026-11-28T05:12:33.058Z").is_some());
        assert!(parse_iso8601("2026-11-28T06:12:33+01:00").is_some());
        assert!(parse_iso8601("2026-11-28T06:12:33 01:00").is_none());
        assert!(parse_iso8601("yesterday").is_none());
    }
}
