//! Command-line definitions (clap): the low-level form, values as an operator typed them (only
//! checked for range and shape). `commands::plan` turns them into the high-level plan a command
//! runs.
//!
//! Every secret-bearing flag is parsed straight into a [`Secret`] and hides its environment
//! value from `--help`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use keybuzz_sync::model::{Secret, TenantId};

#[derive(Parser)]
#[command(
    name = "keybuzz-sync",
    version,
    about = "One sync pass of sellers' Amazon orders into Postgres, then exit"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args)]
pub struct GlobalArgs {
    /// Postgres URL, e.g. postgres://user@host/db
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// Log format on stderr; `auto` is text on a terminal, JSON otherwise
    #[arg(long, env = "KEYBUZZ_LOG_FORMAT", global = true, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Apply the database migrations (idempotent; safe to run concurrently)
    Migrate,
    /// One delta pass per tenant: orders updated since the cursor, and their items
    Delta(SyncArgs),
    /// Fetch items for orders that have none or whose items are stale
    Items(ItemsArgs),
    /// Re-read an explicit time range (orders updated in it) for some tenants, e.g. after an
    /// incident; the cursor moves only if the range reaches past it without a gap
    Backfill(BackfillArgs),
    /// Show tenants' sync state and counts: one tenant in detail, several as a table
    Status(StatusArgs),
    /// A tenant's recent runs, newest first
    History(HistoryArgs),
    /// Exit 1 listing the unhealthy tenants (error too old, lag too high, never synced), else 0;
    /// reads only the database, for a shell, a cron monitor or a probe
    Check(CheckArgs),
}

#[derive(Args)]
pub struct BackfillArgs {
    #[command(flatten)]
    pub sync: SyncArgs,
    /// Start of the range (RFC 3339, e.g. 2026-10-01T00:00:00Z)
    #[arg(long)]
    pub since: chrono::DateTime<chrono::Utc>,
    /// End of the range [default and latest: now minus 2 minutes; with --via reports, now
    /// minus an hour]
    #[arg(long)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Read the range through the Orders API, or through Amazon's order reports (30-day
    /// windows, up to two years back; requested now, imported by this and later passes)
    #[arg(long, value_enum, default_value_t = Via::OrdersApi)]
    pub via: Via,
    /// With --via reports: the range is of purchase dates, not of last updates
    #[arg(long)]
    pub by_order_date: bool,
    /// With --via reports: stay until every report of the range is imported (polling Amazon
    /// every 30 s), instead of leaving the rest to later passes
    #[arg(long)]
    pub wait: bool,
}

/// How `backfill` reads its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    OrdersApi,
    Reports,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct TenantSelection {
    /// A tenant id (a file <ID>.json in the tenants dir); repeatable
    #[arg(long = "tenant", value_name = "ID")]
    pub tenants: Vec<TenantId>,
    /// Every tenant file in the tenants dir
    #[arg(long)]
    pub all_tenants: bool,
}

#[derive(Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub selection: TenantSelection,

    /// Directory of tenant files <tenant-id>.json
    #[arg(
        long,
        env = "KEYBUZZ_TENANTS_DIR",
        default_value = "/etc/keybuzz-sync/tenants"
    )]
    pub tenants_dir: PathBuf,

    /// The SP-API application's LWA client id
    #[arg(long, env = "LWA_CLIENT_ID", hide_env_values = true)]
    pub lwa_client_id: Option<String>,

    /// The SP-API application's LWA client secret (prefer the environment variable)
    #[arg(long, env = "LWA_CLIENT_SECRET", hide_env_values = true)]
    pub lwa_client_secret: Option<Secret>,

    /// Replaces the regional SP-API endpoint (sandbox, simulator); http only when given here
    #[arg(long, env = "SPAPI_ENDPOINT")]
    pub spapi_endpoint: Option<String>,

    /// Login with Amazon token URL [default: https://api.amazon.com/auth/o2/token]
    #[arg(long, env = "LWA_TOKEN_URL")]
    pub lwa_token_url: Option<String>,

    /// Minutes before the cursor that a window starts (Amazon indexes updates late)
    #[arg(long, env = "KEYBUZZ_OVERLAP_MINUTES", default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=1440))]
    pub overlap_minutes: u32,

    /// Days back that a tenant's first pass starts
    #[arg(long, env = "KEYBUZZ_INITIAL_LOOKBACK_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub initial_lookback_days: u32,

    /// Per-order item calls allowed per tenant and pass; the rest wait for the next pass
    #[arg(long, env = "KEYBUZZ_ITEMS_BUDGET", default_value_t = 300)]
    pub items_budget: u32,

    /// Timeout of one HTTP request, in seconds
    #[arg(long, env = "KEYBUZZ_REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub request_timeout_secs: u64,

    /// Retries of a failed request (429, 5xx, timeouts, resets)
    #[arg(long, env = "KEYBUZZ_MAX_RETRIES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=20))]
    pub max_retries: u32,

    /// First retry delay in milliseconds; doubles each retry, with jitter, up to 60 s
    #[arg(long, env = "KEYBUZZ_RETRY_BASE_MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub retry_base_ms: u64,

    /// Upper bound on the retry delays of one request, in seconds
    #[arg(long, env = "KEYBUZZ_RETRY_MAX_TOTAL_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub retry_max_total_secs: u64,

    /// Tenants synced at the same time (Amazon's limits are per tenant)
    #[arg(long, env = "KEYBUZZ_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: u32,

    /// Database connections this process may hold, whatever the concurrency: one per running
    /// pass plus one; tenants wait for a free one
    #[arg(long, env = "KEYBUZZ_MAX_DB_CONNECTIONS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(2..=200))]
    pub max_db_connections: u32,

    /// Time budget of the run (e.g. 4m, 90s): no request is started that could not be answered
    /// within it; passes cut short are `partial` and continue at the next run
    #[arg(long, env = "KEYBUZZ_MAX_DURATION", value_parser = parse_budget)]
    pub max_duration: Option<Duration>,

    /// Only the tenants of shard I of N, e.g. 0/4 (FNV-1a 64 of the tenant id, modulo N)
    #[arg(long, env = "KEYBUZZ_SHARD", value_parser = parse_shard, conflicts_with = "shard_count")]
    pub shard: Option<Shard>,

    /// N shards; this process's shard index comes from JOB_COMPLETION_INDEX (a Kubernetes
    /// Indexed Job)
    #[arg(long, env = "KEYBUZZ_SHARD_COUNT", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub shard_count: Option<u32>,

    /// Largest SP-API answer read, in MiB; a larger one is an error
    #[arg(long, env = "KEYBUZZ_MAX_RESPONSE_MB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_response_mb: u64,

    /// How often a delta pass also re-reads the last --sweep-window (catches updates Amazon
    /// indexes later than the overlap), e.g. 6h [default: never]
    #[arg(long, env = "KEYBUZZ_SWEEP_EVERY", value_parser = parse_duration)]
    pub sweep_every: Option<Duration>,

    /// How far back a sweep re-reads
    #[arg(long, env = "KEYBUZZ_SWEEP_WINDOW", default_value = "24h", value_parser = parse_duration)]
    pub sweep_window: Duration,

    /// Days of run history (sync_runs) kept; older runs of every tenant are deleted at the end
    /// of each run
    #[arg(long, env = "KEYBUZZ_KEEP_RUNS_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub keep_runs_days: u32,

    /// Prometheus Pushgateway base URL; each tenant's metrics are pushed there after its pass
    #[arg(long, env = "KEYBUZZ_PUSHGATEWAY_URL", value_name = "URL")]
    pub pushgateway: Option<String>,

    /// Report imports: orders written per transaction (memory holds one batch)
    #[arg(long, env = "KEYBUZZ_REPORT_BATCH_ORDERS", default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub report_batch_orders: u32,

    /// Report imports: seconds between two looks at Amazon with `backfill --via reports --wait`
    #[arg(long, env = "KEYBUZZ_REPORT_POLL_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub report_poll_secs: u64,
}

/// One shard of a fleet split across processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

fn parse_shard(value: &str) -> Result<Shard, String> {
    let parsed = value
        .split_once('/')
        .and_then(|(i, n)| Some((i.trim().parse::<u32>().ok()?, n.trim().parse::<u32>().ok()?)));
    match parsed {
        Some((index, count)) if count >= 1 && index < count => Ok(Shard { index, count }),
        Some(_) => Err(format!(
            "{value:?}: the index must be below the count, e.g. 0/4"
        )),
        None => Err(format!("{value:?} is not INDEX/COUNT, e.g. 0/4")),
    }
}

fn parse_duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value).map_err(|e| format!("{value:?}: {e} (e.g. 90s, 4m, 6h)"))
}

/// A run's time budget: long enough for a request, short enough to be a budget.
fn parse_budget(value: &str) -> Result<Duration, String> {
    let budget = parse_duration(value)?;
    if budget < Duration::from_secs(10) || budget > Duration::from_secs(7 * 86_400) {
        return Err(format!("{value:?}: use 10s to 7 days"));
    }
    Ok(budget)
}

#[derive(Args)]
pub struct ItemsArgs {
    #[command(flatten)]
    pub sync: SyncArgs,
    /// At most this many orders per tenant [default: the items budget]
    #[arg(long)]
    pub limit: Option<u32>,
}

/// Where the tenant files are, for the commands that only read the database (`status`,
/// `history`, `check`): they tell an unknown tenant from one never synced, and list the fleet.
#[derive(Debug, Args)]
pub struct TenantsDirArg {
    /// Directory of tenant files <tenant-id>.json
    #[arg(
        long,
        env = "KEYBUZZ_TENANTS_DIR",
        default_value = "/etc/keybuzz-sync/tenants"
    )]
    pub tenants_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub selection: TenantSelection,
    #[command(flatten)]
    pub dir: TenantsDirArg,
    /// Print JSON: the backend's object for one --tenant, an array of them otherwise
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The tenant whose runs to show
    #[arg(long = "tenant", value_name = "ID")]
    pub tenant: TenantId,
    /// Show at most this many runs
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
    #[command(flatten)]
    pub dir: TenantsDirArg,
    /// Print a JSON array instead of a table
    #[arg(long)]
    pub json: bool,
}

/// `check`'s tenants: the named ones, or every tenant (the default).
#[derive(Debug, Args)]
#[group(required = false, multiple = false)]
pub struct CheckSelection {
    /// A tenant id to check; repeatable [default: every tenant file in the tenants dir]
    #[arg(long = "tenant", value_name = "ID")]
    pub tenants: Vec<TenantId>,
    /// Every tenant file in the tenants dir (the default)
    #[arg(long)]
    pub all_tenants: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub selection: CheckSelection,
    #[command(flatten)]
    pub dir: TenantsDirArg,
    /// A tenant whose lastError is older than this (since its first failure after its last
    /// success) is unhealthy, e.g. 30m, 1h30m
    #[arg(long, default_value = "30m", value_parser = positive_duration)]
    pub max_error_age: std::time::Duration,
    /// A tenant whose cursor is further behind now than this is unhealthy, e.g. 1h, 90m
    #[arg(long, default_value = "1h", value_parser = positive_duration)]
    pub max_lag: std::time::Duration,
}

/// A human duration (`30m`, `1h 30m`, `2days`), via `humantime`; zero is refused.
fn positive_duration(value: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(value).map_err(|e| format!("{e} (e.g. 30m, 1h, 1h30m)"))?;
    if d.is_zero() {
        return Err("must be more than 0".to_owned());
    }
    Ok(d)
}
