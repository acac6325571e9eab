//! A pass: what it is asked to do ([`PassKind`]) and what it did ([`PassReport`]).

use super::window::SyncWindow;

/// Which pass to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassKind {
    /// Orders updated since the cursor, their items, then pending items within the budget.
    Delta,
    /// Only orders whose items are missing or stale, at most `limit` of them.
    Items { limit: u32 },
    /// One explicit window (an operator's backfill), then pending items within the budget.
    /// The cursor only moves if the window ends after it.
    Backfill { window: SyncWindow },
}

impl PassKind {
    /// The subcommand that runs this pass, as recorded in `sync_runs.command`.
    pub fn command(self) -> &'static str {
        match self {
            PassKind::Delta => "delta",
            PassKind::Items { .. } => "items",
            PassKind::Backfill { .. } => "backfill",
        }
    }

    /// Whether an interrupted window of this pass is resumed by the next pass (delta), or simply
    /// run again (backfill).
    pub fn resumable(self) -> bool {
        matches!(self, PassKind::Delta)
    }

    /// Whether a success of this pass is the tenant's `last_success_at`: only a delta pass
    /// brings the tenant up to date.
    pub fn marks_success(self) -> bool {
        matches!(self, PassKind::Delta)
    }

    /// What the next pass does about a pass of this kind that was stopped.
    pub fn after_interruption(self) -> &'static str {
        match self {
            PassKind::Delta => "the next pass resumes from the last committed page",
            PassKind::Items { .. } => "the next pass fetches the remaining items",
            PassKind::Backfill { .. } => "run the backfill again",
        }
    }
}

/// Rows a pass (or one page) wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCounts {
    pub orders: u64,
    pub items: u64,
    pub quarantined: u64,
}

impl std::ops::AddAssign for WriteCounts {
    fn add_assign(&mut self, other: Self) {
        self.orders += other.orders;
        self.items += other.items;
        self.quarantined += other.quarantined;
    }
}

/// What a pass did: what callers get back and what `sync_runs` records.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    /// The last window the pass asked for.
    pub window: Option<SyncWindow>,
    pub counts: WriteCounts,
    /// Orders still waiting for items when the pass ended; -1 when they could not be counted.
    pub items_pending: i64,
    /// SP-API requests sent, every attempt counted.
    pub api_calls: u64,
    /// Of which answered 429.
    pub throttled: u64,
}
