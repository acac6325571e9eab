//! Prometheus metrics of one tenant, pushed to a Pushgateway after the tenant's pass.
//!
//! A run is a short-lived process, so nothing is scraped from it: after each tenant's pass the
//! caller hands [`push_tenant`] what the run was ([`RunMetrics`]); everything else (cumulative
//! counters, sync state, stored counts, each command's latest run) is read back from the database,
//! so that a push always carries the tenant's whole picture, whichever process pushed it. The
//! body replaces (HTTP PUT) the tenant's group `job="keybuzz-sync", tenant="<id>"`, which holds
//! exactly these series, so a metric that is no longer true (a backlog no longer estimated) does
//! not linger.
//!
//! This module owns the metric names and the exposition text, and never fails a pass: the caller
//! logs a failed push and carries on. It reads the store and never writes it; the Pushgateway URL
//! carries no credentials (checked in [`crate::config`]), and no secret is part of any series.
//!
//! The `tenant` label is in the grouping key (the Pushgateway adds it to every series) and is
//! also written on every series of the body, with the same value: the body is then complete on
//! its own (readable, testable, usable by a textfile collector), and the Pushgateway accepts a
//! body label equal to its grouping key.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Url;

use crate::error::{Error, Result};
use crate::model::{RunOutcome, TenantId};
use crate::store::{CounterRow, LastRun, PgStore, TenantStatus};

/// The Pushgateway `job` of every group.
pub const JOB: &str = "keybuzz-sync";

/// How long a push may take; a Pushgateway that hangs must not hold the CronJob.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// What the caller knows of the run it just finished for this tenant.
#[derive(Debug, Clone)]
pub struct RunMetrics {
    /// `delta`, `items` or `backfill` (`PassKind::command`).
    pub command: &'static str,
    pub outcome: RunOutcome,
    /// How long the tenant's pass took.
    pub duration: Duration,
    pub finished_at: DateTime<Utc>,
}

/// Everything a tenant's metrics are made of, as read from the database.
#[derive(Debug, Clone)]
pub struct TenantSnapshot {
    pub status: TenantStatus,
    pub counters: Vec<CounterRow>,
    pub last_runs: Vec<LastRun>,
}

impl TenantSnapshot {
    pub async fn read(store: &PgStore, tenant: &TenantId) -> Result<Self> {
        Ok(TenantSnapshot {
            status: store.status(tenant).await?,
            counters: store.counters(tenant).await?,
            last_runs: store.last_runs(tenant).await?,
        })
    }
}

/// Builds the tenant's metrics and PUTs them to its Pushgateway group. Call it after each
/// tenant's pass; on `Err`, log it and carry on (a failed push never fails the sync).
pub async fn push_tenant(
    http: &reqwest::Client,
    pushgateway: &Url,
    store: &PgStore,
    tenant: &TenantId,
    run: &RunMetrics,
) -> Result<()> {
    let snapshot = TenantSnapshot::read(store, tenant).await?;
    let body = render(tenant, &snapshot, Some(run), Utc::now());
    let url = group_url(pushgateway, tenant)?;
    let response = http
        .put(url.clone())
        .header(
            reqwest::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )
        .timeout(PUSH_TIMEOUT)
        .body(body)
        .send()
        .await
        .map_err(|e| Error::MetricsPush(format!("PUT {url}: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        let text: String = text.trim().chars().take(300).collect();
        return Err(Error::MetricsPush(format!(
            "PUT {url} answered HTTP {}: {text}",
            status.as_u16()
        )));
    }
    Ok(())
}

/// `{base}/metrics/job/keybuzz-sync/tenant/{tenant}`. A tenant id is letters, digits, `-` and
/// `_`, so it needs no escaping in a path.
pub fn group_url(base: &Url, tenant: &TenantId) -> Result<Url> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| Error::MetricsPush(format!("{base} cannot be a base URL")))?
        .pop_if_empty()
        .extend(["metrics", "job", JOB, "tenant", tenant.as_str()]);
    Ok(url)
}

/// The outcome values `keybuzz_sync_last_run_outcome` always has a series for.
const OUTCOMES: [RunOutcome; 4] = [
    RunOutcome::Success,
    RunOutcome::Partial,
    RunOutcome::Failed,
    RunOutcome::Skipped,
];

/// The Prometheus text exposition (format 0.0.4) of one tenant. `run`, when given, is the run
/// just finished and wins over what the database says of its command's latest run.
pub fn render(
    tenant: &TenantId,
    snapshot: &TenantSnapshot,
    run: Option<&RunMetrics>,
    now: DateTime<Utc>,
) -> String {
    let t = tenant.as_str();
    let mut out = Exposition::default();

    // Counters, from sync_counters. Summed per label set, so a column this build does not
    // use (or a stray row) cannot produce two samples with the same labels.
    let mut counters: BTreeMap<(&str, Labels), i64> = BTreeMap::new();
    for row in &snapshot.counters {
        let labels = match row.metric.as_str() {
            "orders_written" | "items_written" => vec![],
            "api_calls" | "api_throttled" => vec![("operation", row.operation.clone())],
            "runs" => vec![
                ("command", row.command.clone()),
                ("outcome", row.outcome.clone()),
            ],
            // A metric a newer build writes: not ours to name.
            _ => continue,
        };
        *counters.entry((row.metric.as_str(), labels)).or_default() += row.value;
    }
    let counter = |metric: &str| -> Vec<Sample> {
        let mut samples: Vec<Sample> = counters
            .iter()
            .filter(|((m, _), _)| *m == metric)
            .map(|((_, labels), value)| {
                let mut all = vec![("tenant", t.to_owned())];
                all.extend(labels.iter().cloned());
                (all, *value as f64)
            })
            .collect();
        // A tenant-only counter exists from the first push, at 0, so that rate() and
        // increase() see its first increment.
        if samples.is_empty() && matches!(metric, "orders_written" | "items_written") {
            samples.push((vec![("tenant", t.to_owned())], 0.0));
        }
        samples
    };
    out.family(
        "keybuzz_sync_orders_written_total",
        "counter",
        "Orders written (inserted or changed) since the tenant's first pass.",
        counter("orders_written"),
    );
    out.family(
        "keybuzz_sync_items_written_total",
        "counter",
        "Order items written since the tenant's first pass.",
        counter("items_written"),
    );
    out.family(
        "keybuzz_sync_api_calls_total",
        "counter",
        "SP-API requests sent, every attempt counted, by Amazon operation.",
        counter("api_calls"),
    );
    out.family(
        "keybuzz_sync_api_throttled_total",
        "counter",
        "SP-API requests answered 429 (throttled), by Amazon operation.",
        counter("api_throttled"),
    );
    out.family(
        "keybuzz_sync_runs_total",
        "counter",
        "Runs of the tenant, by command and outcome.",
        counter("runs"),
    );

    // Each command's latest run: the database's, then the run just finished.
    let mut last: BTreeMap<String, CommandRun> = snapshot
        .last_runs
        .iter()
        .map(|r| {
            let duration = (r.finished_at - r.started_at).to_std().unwrap_or_default();
            let run = CommandRun {
                outcome: r.outcome,
                duration_secs: duration.as_secs_f64(),
                finished_at: r.finished_at,
            };
            (r.command.clone(), run)
        })
        .collect();
    if let Some(run) = run {
        let this = CommandRun {
            outcome: run.outcome,
            duration_secs: run.duration.as_secs_f64(),
            finished_at: run.finished_at,
        };
        last.insert(run.command.to_owned(), this);
    }
    let per_command = |value: fn(&CommandRun) -> f64| -> Vec<Sample> {
        last.iter()
            .map(|(command, run)| {
                let labels = vec![("tenant", t.to_owned()), ("command", command.clone())];
                (labels, value(run))
            })
            .collect()
    };
    out.family(
        "keybuzz_sync_last_run_duration_seconds",
        "gauge",
        "How long the latest run of this command took for the tenant.",
        per_command(|r| r.duration_secs),
    );
    let mut outcomes = Vec::new();
    for (command, run) in &last {
        let mut values = OUTCOMES.to_vec();
        // An outcome outside the usual four (abandoned) still shows, rather than all zeros.
        if !values.contains(&run.outcome) {
            values.push(run.outcome);
        }
        for value in values {
            let labels = vec![
                ("tenant", t.to_owned()),
                ("command", command.clone()),
                ("outcome", value.as_str().to_owned()),
            ];
            outcomes.push((labels, if value == run.outcome { 1.0 } else { 0.0 }));
        }
    }
    out.family(
        "keybuzz_sync_last_run_outcome",
        "gauge",
        "1 for the outcome of the latest run of this command, 0 for the other outcomes.",
        outcomes,
    );
    out.family(
        "keybuzz_sync_last_run_timestamp_seconds",
        "gauge",
        "When the latest run of this command ended (Unix time).",
        per_command(|r| unix(r.finished_at)),
    );

    // The sync state and stored counts.
    let state = snapshot.status.state.clone().unwrap_or_default();
    let counts = &snapshot.status.counts;
    let one = |value: f64| vec![(vec![("tenant", t.to_owned())], value)];
    out.family(
        "keybuzz_sync_cursor_timestamp_seconds",
        "gauge",
        "The tenant's cursor: orders updated before it are synced (Unix time; 0 before the first window completes).",
        one(state.cursor.map(unix).unwrap_or(0.0)),
    );
    if let Some(cursor) = state.cursor {
        out.family(
            "keybuzz_sync_lag_seconds",
            "gauge",
            "How far the tenant's cursor is behind the time of the push.",
            one(seconds_between(cursor, now)),
        );
    }
    out.family(
        "keybuzz_sync_last_success_timestamp_seconds",
        "gauge",
        "When the tenant's latest successful delta pass ended (Unix time; 0 if never).",
        one(state.last_success_at.map(unix).unwrap_or(0.0)),
    );
    out.family(
        "keybuzz_sync_error_since_timestamp_seconds",
        "gauge",
        "The first failure after the tenant's last success (Unix time; 0 when the last pass succeeded).",
        one(state.error_since.map(unix).unwrap_or(0.0)),
    );
    out.family(
        "keybuzz_sync_orders_awaiting_items",
        "gauge",
        "Stored orders whose items are missing or stale.",
        one(counts.orders_awaiting_items as f64),
    );
    out.family(
        "keybuzz_sync_orders_quarantined",
        "gauge",
        "Orders Amazon sent that could not be read (table order_quarantine).",
        one(counts.orders_quarantined as f64),
    );
    out.family(
        "keybuzz_sync_orders_stored",
        "gauge",
        "Orders stored for the tenant.",
        one(counts.orders as f64),
    );
    out.family(
        "keybuzz_sync_items_stored",
        "gauge",
        "Order items stored for the tenant.",
        one(counts.items as f64),
    );
    if let Some(backlog) = state.backlog_orders {
        out.family(
            "keybuzz_sync_backlog_orders",
            "gauge",
            "Orders the latest pass estimated were left to sync.",
            one(f64::from(backlog)),
        );
    }
    out.text
}

/// A sample's labels, in the order written.
type Labels = Vec<(&'static str, String)>;

/// Labels and value of one sample.
type Sample = (Labels, f64);

/// The latest run of one command.
struct CommandRun {
    outcome: RunOutcome,
    duration_secs: f64,
    finished_at: DateTime<Utc>,
}

#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// One metric family: HELP, TYPE and its samples; nothing at all when it has no sample.
    fn family(&mut self, name: &str, kind: &str, help: &str, samples: Vec<Sample>) {
        if samples.is_empty() {
            return;
        }
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            self.text.push_str(name);
            if !labels.is_empty() {
                self.text.push('{');
                for (i, (label, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        self.text.push(',');
                    }
                    let _ = write!(self.text, "{label}=\"{}\"", escape_label(v));
                }
                self.text.push('}');
            }
            let _ = writeln!(self.text, " {}", number(value));
        }
    }
}

/// A label value as the exposition format wants it: backslash, double quote and line feed
/// escaped.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text: backslash and line feed escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Whole numbers without a fraction (counters read as counts), others as Rust prints them,
/// which Go's ParseFloat reads.
fn number(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 9.0e15 {
        format!("{}", value as i64)
    } else if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

/// Unix time in seconds, to the millisecond.
fn unix(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// `later - earlier` in seconds, never negative (a cursor a little ahead of this host's clock
/// is no lag).
fn seconds_between(earlier: DateTime<Utc>, later: DateTime<Utc>) -> f64 {
    ((later - earlier).num_milliseconds().max(0)) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StatusCounts, StatusState};
    use chrono::TimeZone;

    fn tenant() -> TenantId {
        TenantId::parse("t-1").unwrap()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    fn counter(
        metric: &str,
        operation: &str,
        command: &str,
        outcome: &str,
        value: i64,
    ) -> CounterRow {
        CounterRow {
            metric: metric.into(),
            operation: operation.into(),
            command: command.into(),
            outcome: outcome.into(),
            value,
        }
    }

    fn snapshot(state: Option<StatusState>) -> TenantSnapshot {
        TenantSnapshot {
            status: TenantStatus {
                tenant: tenant(),
                state,
                counts: StatusCounts {
                    orders: 25,
                    items: 70,
                    orders_awaiting_items: 3,
                    orders_quarantined: 1,
                },
                last_run: None,
            },
            counters: vec![
                counter("api_calls", "searchOrders", "", "", 12),
                counter("api_throttled", "searchOrders", "", "", 2),
                counter("orders_written", "", "", "", 25),
                counter("runs", "", "delta", "success", 4),
                counter("runs", "", "delta", "failed", 1),
                counter("something_new", "", "", "", 9),
            ],
            last_runs: vec![LastRun {
                command: "items".into(),
                outcome: RunOutcome::Abandoned,
                started_at: at(1_000),
                finished_at: at(1_060),
            }],
        }
    }

    /// Every sample line, `name{labels} value`.
    fn samples(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn every_family_has_help_and_type_and_counters_end_in_total() {
        let state = StatusState {
            cursor: Some(at(2_000_000_000)),
            last_success_at: Some(at(2_000_000_100)),
            backlog_orders: Some(40),
            ..StatusState::default()
        };
        let run = RunMetrics {
            command: "delta",
            outcome: RunOutcome::Partial,
            duration: Duration::from_millis(2_500),
            finished_at: at(2_000_000_200),
        };
        let text = render(
            &tenant(),
            &snapshot(Some(state)),
            Some(&run),
            at(2_000_000_300),
        );
        let mut names = Vec::new();
        for line in samples(&text) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "{name}\n{text}"
            );
            assert!(line.contains("tenant=\"t-1\""), "{line}");
            names.push(name);
        }
        names.dedup();
        assert_eq!(
            names,
            [
                "keybuzz_sync_orders_written_total",
                "keybuzz_sync_items_written_total",
                "keybuzz_sync_api_calls_total",
                "keybuzz_sync_api_throttled_total",
                "keybuzz_sync_runs_total",
                "keybuzz_sync_last_run_duration_seconds",
                "keybuzz_sync_last_run_outcome",
                "keybuzz_sync_last_run_timestamp_seconds",
                "keybuzz_sync_cursor_timestamp_seconds",
                "keybuzz_sync_lag_seconds",
                "keybuzz_sync_last_success_timestamp_seconds",
                "keybuzz_sync_error_since_timestamp_seconds",
                "keybuzz_sync_orders_awaiting_items",
                "keybuzz_sync_orders_quarantined",
                "keybuzz_sync_orders_stored",
                "keybuzz_sync_items_stored",
                "keybuzz_sync_backlog_orders",
            ]
        );
        let lines = samples(&text);
        for expected in [
            "keybuzz_sync_items_written_total{tenant=\"t-1\"} 0",
            "keybuzz_sync_api_calls_total{tenant=\"t-1\",operation=\"searchOrders\"} 12",
            "keybuzz_sync_runs_total{tenant=\"t-1\",command=\"delta\",outcome=\"failed\"} 1",
            "keybuzz_sync_last_run_duration_seconds{tenant=\"t-1\",command=\"delta\"} 2.5",
            "keybuzz_sync_last_run_duration_seconds{tenant=\"t-1\",command=\"items\"} 60",
            "keybuzz_sync_last_run_outcome{tenant=\"t-1\",command=\"delta\",outcome=\"partial\"} 1",
            "keybuzz_sync_last_run_outcome{tenant=\"t-1\",command=\"delta\",outcome=\"success\"} 0",
            "keybuzz_sync_last_run_outcome{tenant=\"t-1\",command=\"items\",outcome=\"abandoned\"} 1",
            "keybuzz_sync_last_run_timestamp_seconds{tenant=\"t-1\",command=\"delta\"} 2000000200",
            "keybuzz_sync_lag_seconds{tenant=\"t-1\"} 300",
            "keybuzz_sync_error_since_timestamp_seconds{tenant=\"t-1\"} 0",
            "keybuzz_sync_backlog_orders{tenant=\"t-1\"} 40",
        ] {
            assert!(lines.contains(&expected), "{expected} missing in\n{text}");
        }
        assert!(!text.contains("something_new"));
        // Four outcomes for delta; items' abandoned run adds a fifth.
        let outcome_lines = |command: &str| {
            lines
                .iter()
                .filter(|l| {
                    l.starts_with("keybuzz_sync_last_run_outcome")
                        && l.contains(&format!("command=\"{command}\""))
                })
                .count()
        };
        assert_eq!(outcome_lines("delta"), 4);
        assert_eq!(outcome_lines("items"), 5);
    }

    #[test]
    fn unknown_state_gives_zero_timestamps_and_no_lag_or_backlog() {
        let text = render(&tenant(), &snapshot(None), None, at(2_000_000_000));
        assert!(text.contains("keybuzz_sync_cursor_timestamp_seconds{tenant=\"t-1\"} 0\n"));
        assert!(text.contains("keybuzz_sync_last_success_timestamp_seconds{tenant=\"t-1\"} 0\n"));
        assert!(!text.contains("keybuzz_sync_lag_seconds"), "{text}");
        assert!(!text.contains("keybuzz_sync_backlog_orders"), "{text}");
        assert!(
            !text.contains("keybuzz_sync_last_run_outcome{tenant=\"t-1\",command=\"delta\""),
            "no delta run known: {text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("a\nb"), "a\\nb");
        let mut snap = snapshot(None);
        snap.counters = vec![counter("api_calls", "get\"Order\\\n", "", "", 1)];
        let text = render(&tenant(), &snap, None, at(0));
        assert!(
            text.contains(
                r#"keybuzz_sync_api_calls_total{tenant="t-1",operation="get\"Order\\\n"} 1"#
            ),
            "{text}"
        );
    }

    #[test]
    fn numbers_and_group_urls() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(1_764_409_200.123), "1764409200.123");
        assert_eq!(number(0.25), "0.25");
        let base = Url::parse("http://pgw:9091").unwrap();
        assert_eq!(
            group_url(&base, &tenant()).unwrap().as_str(),
            "http://pgw:9091/metrics/job/keybuzz-sync/tenant/t-1"
        );
        let base = Url::parse("https://mon.example/pushgateway/?x=1").unwrap();
        assert_eq!(
            group_url(&base, &tenant()).unwrap().as_str(),
            "https://mon.example/pushgateway/metrics/job/keybuzz-sync/tenant/t-1"
        );
    }
}
