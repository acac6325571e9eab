//! keybuzz-sync keeps KeyBuzz's Postgres in step with its sellers' Amazon orders.
//!
//! The library is the engine; the binary (`main.rs`, with `cli` and `commands`) is a thin CLI
//! over it. Every arrow points down:
//!
//! ```text
//! commands (binary) ──► sync (engine) ──► spapi (Amazon client) ──► config ──► model
//!                                     └─► store (Postgres) ─────────────────► model
//! commands (binary) ──► metrics ──► store
//! ```
//! - [`model`]: the shared vocabulary (tenants, orders, windows, passes) and the engine's pure
//!   decisions. Depends on nothing else here.
//! - [`config`]: flags, environment and tenant files, validated and typed.
//! - [`spapi`]: the Amazon client (Login with Amazon, pacing, retries, wire shapes).
//! - [`store`]: Postgres (upserts, sync state, runs, locks, buckets, status).
//! - [`sync`]: the pass: windows, cursor, items, one [`sync::OrdersSource`] per API version, and
//!   [`sync::Connector`], which wires a tenant's source.
//! - [`metrics`]: a tenant's Prometheus metrics, pushed to a Pushgateway after its pass.
//! - [`error`]: the one error type.

pub mod config;
pub mod error;
pub mod metrics;
pub mod model;
pub mod spapi;
pub mod store;
pub mod sync;

pub use error::{Error, Result};
