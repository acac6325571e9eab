//! What one page commit carries to the store: the orders to write with what to do about their
//! items ([`OrderWrite`]), and what the commit means for the window ([`PageProgress`]).

use super::order::{ItemRecord, OrderRecord};
use super::window::SyncWindow;

/// What to do with an order's items when writing it.
#[derive(Debug, Clone)]
pub enum ItemsUpdate {
    /// Replace the stored items with these (the whole list).
    Replace(Vec<ItemRecord>),
    /// Leave the stored items as they are.
    Keep,
    /// Fetching them failed or was deferred: keep them marked stale, with the reason.
    Pending(String),
}

#[derive(Debug, Clone)]
pub struct OrderWrite {
    pub order: OrderRecord,
    pub items: ItemsUpdate,
}

/// What a committed page means for the window.
#[derive(Debug, Clone)]
pub enum PageProgress {
    /// More pages follow: remember where to continue if this process dies.
    Continue { window: SyncWindow, token: String },
    /// That was the last page: the cursor moves to the window's end (never backwards) and the
    /// resume point is cleared.
    WindowDone { window: SyncWindow },
    /// A page of an operator's backfill: no resume point is saved or cleared (a delta's stays
    /// intact); after the last page the cursor moves only if the window started at or before it,
    /// so no gap opens, and a tenant without a cursor keeps none.
    Backfill { window: SyncWindow, last_page: bool },
}

impl PageProgress {
    /// The progress marker of a page of `window`, given the page's next token.
    pub fn after_page(window: SyncWindow, resumable: bool, next_token: Option<&str>) -> Self {
        match (resumable, next_token) {
            (true, Some(token)) => PageProgress::Continue {
                window,
                token: token.to_owned(),
            },
            (true, None) => PageProgress::WindowDone { window },
            (false, next) => PageProgress::Backfill {
                window,
                last_page: next.is_none(),
            },
        }
    }
}
