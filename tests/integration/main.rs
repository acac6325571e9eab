//! keybuzz-sync's integration tests: a real Postgres (`#[sqlx::test]` gives each test a fresh
//! database from `DATABASE_URL`) and the SP-API simulator over HTTP on 127.0.0.1.

mod cli;
mod delta;
mod fixtures;
mod fleet;
mod ops;
mod reliability;
mod reports;
mod util;
mod v2026;
