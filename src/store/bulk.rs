//! Bulk writes into `orders` and `order_items`: a batch of any size in a fixed handful of
//! set-based statements, each column sent as one array parameter (`UNNEST($n::type[], ...)`).
//!
//! Why this shape, measured by `benches/import.rs` against the page write of migration 0003 and
//! against a bare `COPY` of the same rows:
//! - One array per column instead of a bind parameter per value: the statement text is the same
//!   whatever the row count, so it is parsed once per connection, and the values travel in binary.
//! - Lookups by order id go through [`ORDERS_BY_ID`] / [`ITEMS_BY_ORDER_ID`], one unique-key probe
//!   per order, in statements that are planned at each execution (not prepared). A tenant's
//!   tables grow by orders of magnitude within one import, and a plan cached while they were
//!   small (a sequential scan of an empty table), or made from statistics from before, scanned
//!   the whole tenant for every batch: that is what made the old path slow. The inserts keep
//!   their prepared plans (a per-execution plan would also re-plan every foreign-key check).
//! - Orders a report import sees for the first time are `COPY`-ed straight into the tables
//!   ([`copy_rows`]), the one case where the rows are known to be new.
//! - sqlx 0.9.0 does not set `TCP_NODELAY` (transact-rs/sqlx#4335, fixed by #4336, not released):
//!   each large statement waits for the server's delayed acknowledgement (about 40 ms on Linux).
//!   Fewer, larger statements per transaction keep that cost small.
//!
//! The merge rules (which copy of an order wins, what happens to its items) are the callers':
//! [`merge_orders_and_items`] keeps the delta's rules exactly; `report_import` applies the
//! report's. Everything runs in the caller's transaction; nothing here commits.

use serde_json::Value;
use sqlx::{AssertSqlSafe, Postgres, Transaction};

use crate::error::{Error, Result};
use crate::model::{ItemRecord, ItemsUpdate, MARKETPLACE, OrderRecord, TenantId};

/// `u(id)`: the `orders.id` of the orders `$3` names, for tenant `$1` and marketplace `$2`.
///
/// Written as one unique-key probe per order (`LATERAL ... OFFSET 0` keeps the planner from
/// flattening it into a join that it would plan from the tenant's estimated size).
pub(crate) const ORDERS_BY_ID: &str = "(SELECT o.id FROM unnest($3::text[]) AS k(order_id)
      CROSS JOIN LATERAL (SELECT id FROM orders
                           WHERE tenant_id = $1 AND marketplace = $2 AND external_order_id = k.order_id
                          OFFSET 0) o) u";

/// [`ORDERS_BY_ID`] with a text per order (`$4`, same order as `$3`) as `u.reason`.
const ORDERS_BY_ID_WITH_REASON: &str = "(SELECT o.id, k.reason
       FROM unnest($3::text[], $4::text[]) AS k(order_id, reason)
      CROSS JOIN LATERAL (SELECT id FROM orders
                           WHERE tenant_id = $1 AND marketplace = $2 AND external_order_id = k.order_id
                          OFFSET 0) o) u";

/// `u(id, external_order_id, order_item_id)`: every item of the orders `$3` names (see
/// [`ORDERS_BY_ID`]).
pub(crate) const ITEMS_BY_ORDER_ID: &str = "(SELECT i.id, i.external_order_id, i.order_item_id
       FROM unnest($3::text[]) AS k(order_id)
      CROSS JOIN LATERAL (SELECT id, external_order_id, order_item_id FROM order_items
                           WHERE tenant_id = $1 AND marketplace = $2 AND external_order_id = k.order_id
                          OFFSET 0) i) u";

/// Orders as one array per column, in the order of `UNNEST_ORDERS`' columns.
#[derive(Default)]
pub(crate) struct OrderColumns<'a> {
    pub ids: Vec<&'a str>,
    marketplace_ids: Vec<Option<&'a str>>,
    statuses: Vec<&'static str>,
    purchase_dates: Vec<chrono::DateTime<chrono::Utc>>,
    last_update_dates: Vec<chrono::DateTime<chrono::Utc>>,
    channels: Vec<Option<&'a str>>,
    totals: Vec<Option<rust_decimal::Decimal>>,
    total_currencies: Vec<Option<&'a str>>,
    raws: Vec<&'a Value>,
}

impl<'a> OrderColumns<'a> {
    pub(crate) fn push(&mut self, o: &'a OrderRecord) {
        self.ids.push(&o.external_order_id);
        self.marketplace_ids.push(o.marketplace_id.as_deref());
        self.statuses.push(o.status.as_str());
        self.purchase_dates.push(o.purchase_date);
        self.last_update_dates.push(o.last_update_date);
        self.channels.push(o.fulfillment_channel.as_deref());
        self.totals.push(o.order_total_amount);
        self.total_currencies
            .push(o.order_total_currency.as_deref());
        self.raws.push(&o.raw);
    }

    /// Binds the nine columns as `$start..$start+8`.
    pub(crate) fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(&self.ids)
            .bind(&self.marketplace_ids)
            .bind(&self.statuses)
            .bind(&self.purchase_dates)
            .bind(&self.last_update_dates)
            .bind(&self.channels)
            .bind(&self.totals)
            .bind(&self.total_currencies)
            .bind(&self.raws)
    }
}

/// `UNNEST` of [`OrderColumns`] bound from `$4`, as `u(...)` with the `orders` column names.
pub(crate) const UNNEST_ORDERS: &str =
    "UNNEST($4::text[], $5::text[], $6::text[], $7::timestamptz[],
                   $8::timestamptz[], $9::text[], $10::numeric[], $11::text[], $12::jsonb[])
             AS u(external_order_id, marketplace_id, status, purchase_date, last_update_date,
                  fulfillment_channel, order_total_amount, order_total_currency, raw)";

/// Items as one array per column, in the order of `UNNEST_ITEMS`' columns.
#[derive(Default)]
pub(crate) struct ItemColumns<'a> {
    order_ids: Vec<&'a str>,
    item_ids: Vec<&'a str>,
    asins: Vec<Option<&'a str>>,
    skus: Vec<Option<&'a str>>,
    titles: Vec<Option<&'a str>>,
    quantities: Vec<i32>,
    shipped: Vec<Option<i32>>,
    prices: Vec<Option<rust_decimal::Decimal>>,
    taxes: Vec<Option<rust_decimal::Decimal>>,
    shipping: Vec<Option<rust_decimal::Decimal>>,
    discounts: Vec<Option<rust_decimal::Decimal>>,
    currencies: Vec<Option<&'a str>>,
    raws: Vec<&'a Value>,
}

impl<'a> ItemColumns<'a> {
    pub(crate) fn push(&mut self, order_id: &'a str, i: &'a ItemRecord) {
        self.order_ids.push(order_id);
        self.item_ids.push(&i.order_item_id);
        self.asins.push(i.asin.as_deref());
        self.skus.push(i.seller_sku.as_deref());
        self.titles.push(i.title.as_deref());
        self.quantities.push(i.quantity_ordered);
        self.shipped.push(i.quantity_shipped);
        self.prices.push(i.item_price_amount);
        self.taxes.push(i.item_tax_amount);
        self.shipping.push(i.shipping_price_amount);
        self.discounts.push(i.promotion_discount_amount);
        self.currencies.push(i.currency.as_deref());
        self.raws.push(&i.raw);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.item_ids.is_empty()
    }

    /// Binds the thirteen columns as `$4..$16`.
    pub(crate) fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(&self.order_ids)
            .bind(&self.item_ids)
            .bind(&self.asins)
            .bind(&self.skus)
            .bind(&self.titles)
            .bind(&self.quantities)
            .bind(&self.shipped)
            .bind(&self.prices)
            .bind(&self.taxes)
            .bind(&self.shipping)
            .bind(&self.discounts)
            .bind(&self.currencies)
            .bind(&self.raws)
    }
}

/// `UNNEST` of [`ItemColumns`] bound from `$4`, as `u(...)` with the `order_items` column names.
pub(crate) const UNNEST_ITEMS: &str =
    "UNNEST($4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                   $9::integer[], $10::integer[], $11::numeric[], $12::numeric[], $13::numeric[],
                   $14::numeric[], $15::text[], $16::jsonb[])
             AS u(external_order_id, order_item_id, asin, seller_sku, title, quantity_ordered,
                  quantity_shipped, item_price_amount, item_tax_amount, shipping_price_amount,
                  promotion_discount_amount, currency, raw)";

/// One order to write with the delta's rules, and what to do with its items.
pub(crate) struct DeltaRow<'a> {
    pub order: &'a OrderRecord,
    pub items: &'a ItemsUpdate,
}

/// What a merge wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Merged {
    pub orders: u64,
    pub items: u64,
}

/// What to do with an order's items: replace them, keep them, or mark them pending with a reason.
enum ItemsAction<'a> {
    Replace(&'a [ItemRecord]),
    Keep,
    Pending(&'a str),
}

fn items_action(items: &ItemsUpdate) -> ItemsAction<'_> {
    match items {
        // Every Amazon order has at least one item: an empty list is not an answer to keep.
        ItemsUpdate::Replace(items) if items.is_empty() => {
            ItemsAction::Pending("Amazon returned no items for this order")
        }
        ItemsUpdate::Replace(items) => ItemsAction::Replace(items),
        ItemsUpdate::Keep => ItemsAction::Keep,
        ItemsUpdate::Pending(reason) => ItemsAction::Pending(reason),
    }
}

/// Writes orders with the delta's rules:
/// - an order replaces the stored one only when it is newer, or as new but different (a v0 row
///   re-read through v2026, a report row re-read through the Orders API): an older copy never
///   overwrites a newer one, and an identical one changes nothing, not even `updated_at`;
/// - its items are then replaced as a whole, left alone, or marked pending with a reason (an
///   empty list counts as pending: every Amazon order has an item);
/// - items a report import staged without an id are dropped for the orders whose items are
///   replaced: the Orders API has supplied their ids.
///
/// `rows` must hold one copy per order (see `model::decide::winning_copies`).
pub(crate) async fn merge_orders_and_items(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    source_api: &str,
    rows: &[DeltaRow<'_>],
) -> Result<Merged> {
    if rows.is_empty() {
        return Ok(Merged::default());
    }
    let mut orders = OrderColumns::default();
    let mut items = ItemColumns::default();
    let (mut replaced, mut pending, mut reasons) = (Vec::new(), Vec::new(), Vec::new());
    for row in rows {
        orders.push(row.order);
        let id = row.order.external_order_id.as_str();
        match items_action(row.items) {
            ItemsAction::Replace(list) => {
                replaced.push(id);
                for item in list {
                    items.push(id, item);
                }
            }
            ItemsAction::Keep => {}
            ItemsAction::Pending(reason) => {
                pending.push(id);
                reasons.push(reason);
            }
        }
    }

    let written = orders
        .bind(
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO orders (tenant_id, marketplace, source_api, items_stale, external_order_id,
                                     marketplace_id, status, purchase_date, last_update_date,
                                     fulfillment_channel, order_total_amount, order_total_currency, raw)
                 SELECT $1, $2, $3, true, u.* FROM {UNNEST_ORDERS}
                 ON CONFLICT (tenant_id, marketplace, external_order_id) DO UPDATE SET
                     marketplace_id = EXCLUDED.marketplace_id,
                     status = EXCLUDED.status,
                     purchase_date = EXCLUDED.purchase_date,
                     last_update_date = EXCLUDED.last_update_date,
                     fulfillment_channel = EXCLUDED.fulfillment_channel,
                     order_total_amount = EXCLUDED.order_total_amount,
                     order_total_currency = EXCLUDED.order_total_currency,
                     source_api = EXCLUDED.source_api,
                     raw = EXCLUDED.raw,
                     items_stale = orders.items_stale
                         OR orders.last_update_date <> EXCLUDED.last_update_date
                         OR orders.status <> EXCLUDED.status,
                     updated_at = now()
                 WHERE orders.last_update_date < EXCLUDED.last_update_date
                    OR (orders.last_update_date = EXCLUDED.last_update_date
                        AND orders.raw IS DISTINCT FROM EXCLUDED.raw)"
            )))
            .bind(tenant.as_str())
            .bind(MARKETPLACE)
            .bind(source_api),
        )
        .execute(&mut **tx)
        .await?
        .rows_affected();

    if !pending.is_empty() {
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE orders o SET items_stale = true, items_error = u.reason, items_attempted_at = now()
               FROM {ORDERS_BY_ID_WITH_REASON} WHERE o.id = u.id"
        )))
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .bind(&pending)
        .bind(&reasons)
        .persistent(false)
        .execute(&mut **tx)
        .await?;
    }
    if replaced.is_empty() {
        return Ok(Merged {
            orders: written,
            items: 0,
        });
    }
    sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM order_items d USING {ITEMS_BY_ORDER_ID} WHERE d.id = u.id"
    )))
    .bind(tenant.as_str())
    .bind(MARKETPLACE)
    .bind(&replaced)
    .persistent(false)
    .execute(&mut **tx)
    .await?;
    let inserted = items
        .bind(
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO order_items (tenant_id, marketplace, source_api, external_order_id,
                                          order_item_id, asin, seller_sku, title, quantity_ordered,
                                          quantity_shipped, item_price_amount, item_tax_amount,
                                          shipping_price_amount, promotion_discount_amount,
                                          currency, raw)
                 SELECT $1, $2, $3, u.* FROM {UNNEST_ITEMS}"
            )))
            .bind(tenant.as_str())
            .bind(MARKETPLACE)
            .bind(source_api),
        )
        .execute(&mut **tx)
        .await?
        .rows_affected();
    let updated = sqlx::query(AssertSqlSafe(format!(
        "UPDATE orders o SET items_stale = false, items_fetched_at = now(),
                items_fetched_status = o.status, items_error = NULL
           FROM {ORDERS_BY_ID} WHERE o.id = u.id"
    )))
    .bind(tenant.as_str())
    .bind(MARKETPLACE)
    .bind(&replaced)
    .persistent(false)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if updated != replaced.len() as u64 {
        // Items without their order would be orphans; the foreign key refuses them too, this
        // just says so in words.
        return Err(Error::Database(sqlx::Error::Protocol(format!(
            "items for {} orders of tenant {tenant}, of which only {updated} are stored",
            replaced.len()
        ))));
    }
    sqlx::query(
        "DELETE FROM report_staged_items
          WHERE tenant_id = $1 AND marketplace = $2 AND external_order_id = ANY($3)",
    )
    .bind(tenant.as_str())
    .bind(MARKETPLACE)
    .bind(&replaced)
    .persistent(false)
    .execute(&mut **tx)
    .await?;
    Ok(Merged {
        orders: written,
        items: inserted,
    })
}

/// Bytes sent per `CopyData` message: large enough to amortise the round trip, small enough
/// that a batch never holds much memory twice.
const COPY_CHUNK: usize = 1 << 20;

/// One `COPY ... FROM STDIN` text-format stream being built: tab-separated columns, `\N` for
/// NULL, and `\`, tab, newline and carriage return escaped. Used where rows are known to be
/// new (a report import's first sight of an order), the one case where `COPY` goes straight
/// into the tables.
pub(crate) struct CopyText {
    buf: Vec<u8>,
    /// Columns written on the current row.
    column: usize,
}

impl CopyText {
    fn new() -> Self {
        CopyText {
            buf: Vec::with_capacity(COPY_CHUNK + 64 * 1024),
            column: 0,
        }
    }

    fn separator(&mut self) {
        if self.column > 0 {
            self.buf.push(b'\t');
        }
        self.column += 1;
    }

    fn escaped(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\\' => self.buf.extend_from_slice(b"\\\\"),
                b'\t' => self.buf.extend_from_slice(b"\\t"),
                b'\n' => self.buf.extend_from_slice(b"\\n"),
                b'\r' => self.buf.extend_from_slice(b"\\r"),
                // Postgres refuses NUL in text; the readers already replace it, this is the
                // last line of defence so that one character never fails a whole batch.
                0 => self.buf.extend_from_slice("\u{FFFD}".as_bytes()),
                b => self.buf.push(b),
            }
        }
    }

    pub(crate) fn text(&mut self, value: Option<&str>) -> &mut Self {
        self.separator();
        match value {
            None => self.buf.extend_from_slice(b"\\N"),
            Some(v) => self.escaped(v.as_bytes()),
        }
        self
    }

    pub(crate) fn display(&mut self, value: Option<impl std::fmt::Display>) -> &mut Self {
        self.separator();
        match value {
            None => self.buf.extend_from_slice(b"\\N"),
            Some(v) => {
                use std::io::Write;
                let _ = write!(self.buf, "{v}");
            }
        }
        self
    }

    pub(crate) fn time(&mut self, value: chrono::DateTime<chrono::Utc>) -> &mut Self {
        // RFC 3339 with an explicit offset: unambiguous whatever the session's TimeZone.
        self.display(Some(
            value.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        ))
    }

    pub(crate) fn json(&mut self, value: &Value) -> &mut Self {
        self.separator();
        // serde_json escapes control characters inside strings, so the text has no raw tab or
        // newline; its backslashes still need doubling for COPY.
        let text = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
        self.escaped(&text);
        self
    }

    fn end_row(&mut self) {
        self.buf.push(b'\n');
        self.column = 0;
    }
}

/// Streams rows into `statement` (a `COPY ... FROM STDIN`): `write` puts one row's columns.
/// Data goes out in chunks, so memory stays flat whatever the row count.
pub(crate) async fn copy_rows<T>(
    tx: &mut Transaction<'_, Postgres>,
    statement: &'static str,
    rows: impl IntoIterator<Item = T>,
    mut write: impl FnMut(&mut CopyText, T),
) -> Result<u64> {
    let mut copy = tx.copy_in_raw(statement).await?;
    let mut out = CopyText::new();
    for row in rows {
        write(&mut out, row);
        out.end_row();
        if out.buf.len() >= COPY_CHUNK {
            copy.send(std::mem::take(&mut out.buf)).await?;
            out.buf.reserve(COPY_CHUNK + 64 * 1024);
        }
    }
    if !out.buf.is_empty() {
        copy.send(out.buf).await?;
    }
    Ok(copy.finish().await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn copy_text_escapes_what_copy_would_misread() {
        let mut out = CopyText::new();
        out.text(Some("a\tb\nc\\d\re\0"))
            .text(None)
            .display(Some(-3))
            .display(Some(Decimal::new(-1999, 2)))
            .json(&serde_json::json!({"k": "x\ny"}));
        out.end_row();
        let expected = concat!(
            "a\\tb\\nc\\\\d\\re\u{FFFD}",
            "\t\\N\t-3\t-19.99\t",
            r#"{"k":"x\\ny"}"#,
            "\n"
        );
        assert_eq!(String::from_utf8(out.buf).unwrap(), expected);
    }
}
