//! Reading Amazon's JSON into the model, shared by both versions: typed views that name what
//! failed, the one change made to what Amazon sends (NUL characters), and splitting a page into
//! readable and quarantined orders.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::{FetchedOrder, ItemRecord, RejectedOrder};
use crate::spapi::Operation;

/// Deserializes a typed view of `value`, naming the operation and what failed.
pub(crate) fn decode<T: DeserializeOwned>(op: Operation, what: &str, value: &Value) -> Result<T> {
    T::deserialize(value).map_err(|e| Error::BadResponse {
        operation: op.name(),
        detail: format!("{what}: {e}"),
    })
}

/// Postgres refuses U+0000 in `text` and `jsonb`: one such character from Amazon would fail the
/// page forever. It is replaced by U+FFFD, the one change made to what Amazon sent.
pub(crate) fn without_nul(value: Value) -> Value {
    match value {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "\u{FFFD}")),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.replace('\0', "\u{FFFD}"), without_nul(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Fails when an order lists the same item id twice (the whole list is then suspect).
pub(crate) fn check_unique_items(
    op: Operation,
    order_id: &str,
    items: &[ItemRecord],
) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    match items
        .iter()
        .find(|i| !seen.insert(i.order_item_id.as_str()))
    {
        Some(dup) => Err(Error::BadResponse {
            operation: op.name(),
            detail: format!("order {order_id} lists item {} twice", dup.order_item_id),
        }),
        None => Ok(()),
    }
}

/// Splits a page's raw orders into readable ones and rejected ones (to quarantine).
pub(crate) fn split_readable(
    raws: Vec<Value>,
    id_key: &str,
    read: impl Fn(Value) -> Result<FetchedOrder>,
) -> (Vec<FetchedOrder>, Vec<RejectedOrder>) {
    let mut orders = Vec::new();
    let mut rejected = Vec::new();
    for raw in raws.into_iter().map(without_nul) {
        match read(raw.clone()) {
            Ok(order) => orders.push(order),
            Err(e) => rejected.push(RejectedOrder {
                order_id: raw.get(id_key).and_then(Value::as_str).map(str::to_owned),
                raw,
                error: e.to_string(),
            }),
        }
    }
    (orders, rejected)
}
