//! The `spapi-sim` binary: serves the simulator on a fixed or free port for demos and manual
//! testing. Prints exactly one line on stdout (the URL) so scripts can wait for it; logs go to
//! stderr and never contain refresh tokens, client secrets or access tokens.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use spapi_sim::{SimConfig, SimHandle};

#[derive(Parser, Debug)]
#[command(
    name = "spapi-sim",
    about = "Local simulator of Amazon SP-API Orders (v0, v2026-01-01), Reports (2021-06-30, XML all-orders reports) and LWA",
    long_about = "Local simulator of Amazon SP-API Orders (v0, v2026-01-01), Reports (2021-06-30, XML all-orders reports) and LWA.\n\nServes /auth/o2/token, /orders/v0/..., /orders/2026-01-01/..., /reports/2021-06-30/{reports,documents} and /sim-s3/{documentId} (the presigned report-document URLs). Faults, stuck report queues and the like are test-only controls (spapi_sim::SimHandle)."
)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Multiplies Amazon's documented request rates (not bursts).
    #[arg(long, default_value_t = 1.0)]
    rate_scale: f64,
    #[arg(long, default_value = "sim-client-id")]
    client_id: String,
    #[arg(long, default_value = "sim-client-secret")]
    client_secret: String,
    /// Authorise a refresh token for a seller: TOKEN=SELLER (repeatable).
    #[arg(long = "grant", value_parser = parse_pair)]
    grants: Vec<(String, String)>,
    /// Generate orders for a seller: SELLER=COUNT (repeatable; spread over the last 20 days).
    #[arg(long = "seed", value_parser = parse_seed)]
    seeds: Vec<(String, usize)>,
    /// Lifetime of LWA access tokens, in seconds (Amazon: 3600).
    #[arg(long, default_value_t = 3600)]
    access_token_ttl_secs: u64,
    /// Lifetime of v2026 searchOrders paginationTokens, in seconds (Amazon: 24 hours).
    #[arg(long, default_value_t = 24 * 3600)]
    page_token_ttl_v2026_secs: u64,
    /// Lifetime of v0 NextTokens, in seconds; unlimited when absent (Amazon documents none).
    #[arg(long)]
    page_token_ttl_v0_secs: Option<u64>,
    /// How long each report stays IN_PROGRESS, in seconds (fractions allowed). Reports of one
    /// seller are processed one after another.
    #[arg(long, default_value = "2", value_parser = parse_secs)]
    report_generation_secs: Duration,
    /// Lifetime of report-document URLs, in seconds (Amazon: 300).
    #[arg(long, default_value_t = 300)]
    report_url_ttl_secs: u64,
    /// Reports say OrderStatus "Shipping" (the MWS-era value) for Unshipped and
    /// PartiallyShipped orders.
    #[arg(long)]
    report_status_shipping: bool,
}

/// Seconds as a decimal number, e.g. "0.05".
fn parse_secs(raw: &str) -> Result<Duration, String> {
    raw.parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| "expected a non-negative number of seconds".to_string())
}

/// Splits at the last `=` so refresh tokens may themselves contain `=`.
fn parse_pair(raw: &str) -> Result<(String, String), String> {
    match raw.rsplit_once('=') {
        Some((left, right)) if !left.is_empty() && !right.is_empty() => {
            Ok((left.to_string(), right.to_string()))
        }
        _ => Err("expected KEY=VALUE".to_string()),
    }
}

fn parse_seed(raw: &str) -> Result<(String, usize), String> {
    let (seller, count) = parse_pair(raw)?;
    let count = count
        .parse::<usize>()
        .map_err(|_| "expected SELLER=COUNT with a whole number".to_string())?;
    Ok((seller, count))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a human at a terminal, not in captured test or CI logs.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let config = SimConfig {
        rate_scale: args.rate_scale,
        client_id: args.client_id,
        client_secret: args.client_secret,
        access_token_ttl: Duration::from_secs(args.access_token_ttl_secs),
        page_token_ttl_v2026: Some(Duration::from_secs(args.page_token_ttl_v2026_secs)),
        page_token_ttl_v0: args.page_token_ttl_v0_secs.map(Duration::from_secs),
        report_generation: args.report_generation_secs,
        report_url_ttl: Duration::from_secs(args.report_url_ttl_secs),
        report_status_shipping: args.report_status_shipping,
        ..SimConfig::default()
    };
    let sim = match SimHandle::start_on(config, args.listen).await {
        Ok(sim) => sim,
        Err(error) => {
            eprintln!("spapi-sim: cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    for (refresh_token, seller) in &args.grants {
        sim.grant(refresh_token, seller);
        tracing::info!(seller = %seller, "granted a refresh token");
    }
    let now = chrono::Utc::now();
    for (seller, count) in &args.seeds {
        // Seed derived from the seller name: the same command line gives the same order set shape.
        let seed = spapi_sim_seed(seller);
        sim.seed_orders(seller, *count, seed, now, chrono::Duration::days(20));
        tracing::info!(seller = %seller, count, "seeded orders");
    }
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "spapi-sim listening on {}", sim.base_url())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    wait_for_shutdown().await;
    tracing::info!("spapi-sim shutting down");
    ExitCode::SUCCESS
}

/// FNV-1a of the seller name.
fn spapi_sim_seed(seller: &str) -> u64 {
    seller.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
