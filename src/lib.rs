//! keybuzz-sync keeps KeyBuzz's Postgres in step with its sellers' Amazon orders.
//!
//! The library is the engine; `main.rs` is a thin CLI over it.
//! - [`config`]: flags, environment and tenant files, validated and typed.
//! - [`spapi`]: the Amazon client (Login with Amazon, pacing, retries, wire shapes).
//! - [`sync`]: the pass: windows, cursor, items, one [`sync::OrdersSource`] per API version.
//! - [`store`]: Postgres (upserts, sync state, runs, locks).
//! - [`commands`]: one module per subcommand.

pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod spapi;
pub mod store;
pub mod sync;

pub use error::{Error, Result};
