//! The vocabulary that the engine, the store and the commands share.
//!
//! Plain data and pure decisions, nothing else: this module depends on no other module of the
//! crate, does no I/O, and never logs. Everything above it (the Amazon client, the store, the
//! engine, the commands) speaks these types, so that no layer needs another's internals.
//!
//! - [`tenant`]: who is synced ([`TenantId`]), where ([`Region`]) and through which API
//!   ([`OrdersApi`]).
//! - [`secret`]: [`Secret`], a string that is never printed.
//! - [`order`]: the normalized rows both Orders API versions write ([`OrderRecord`],
//!   [`ItemRecord`]), and what a page delivered ([`OrdersPage`]).
//! - [`window`]: the time range a pass asks Amazon for ([`SyncWindow`]).
//! - [`pass`]: what a pass is asked to do ([`PassKind`]) and what it did ([`PassReport`]).
//! - [`write`]: what a page commit carries ([`OrderWrite`], [`PageProgress`]).
//! - [`decide`]: the pure decisions of the engine (which copy of an order wins, which orders of a
//!   page need their items), with their unit tests.
//! - [`run`]: the recorded side of a pass: run outcomes, sync state, saved rate buckets.
//! - [`report`]: imports through the Reports API: report orders as rows, and report jobs.

pub mod decide;
pub mod order;
pub mod pass;
pub mod report;
pub mod run;
pub mod secret;
pub mod tenant;
pub mod window;
pub mod write;

pub use order::{FetchedOrder, ItemRecord, OrderRecord, OrderStatus, OrdersPage, RejectedOrder};
pub use pass::{Backlog, PassKind, PassProgress, PassReport, ProgressSnapshot, WriteCounts};
pub use report::{
    ImportCounts, InitialImport, JobPurpose, JobStatus, ReportEntry, ReportItem, ReportJob,
    ReportOrder, ReportType, StagedItem, report_source,
};
pub use run::{
    BucketState, CounterDeltas, OperationCount, ResumePoint, RunOutcome, RunTally, StoredOrder,
    SyncState,
};
pub use secret::Secret;
pub use tenant::{InvalidTenantId, OrdersApi, Region, TenantId};
pub use window::{SyncWindow, WindowRules, amazon_time};
pub use write::{ItemsUpdate, OrderWrite, PageProgress};

/// The `marketplace` / `type` value of every row this tool writes.
pub const MARKETPLACE: &str = "AMAZON";
