//! Which tenants a read-only command (`status`, `history`, `check`) is about: the tenant files
//! in the tenants dir, and the tenants the database has a sync state for.
//!
//! A tenant is known when it has a file (it is synced, or will be) or a sync state (it was
//! synced, or tried, and its file may since have been removed). An id with neither is
//! [`Error::UnknownTenant`] (exit 5), so that a typo is not reported as "never synced". Only a
//! file's presence matters here, not its content: these commands need no Amazon credentials, and
//! a broken file is the sync commands' error to report.

use std::collections::BTreeMap;
use std::path::Path;

use keybuzz_sync::model::TenantId;
use keybuzz_sync::store::{PgStore, StatusState};
use keybuzz_sync::{Error, Result};

/// A tenant a command reports on.
#[derive(Debug, Clone)]
pub struct KnownTenant {
    pub id: TenantId,
    /// `<dir>/<id>.json` exists.
    pub has_file: bool,
    /// Its `marketplace_sync_state` row; `None`: never synced (not even tried).
    pub state: Option<StatusState>,
}

/// What the operator asked for.
pub enum Selection<'a> {
    /// These ids, in this order (duplicates dropped).
    Named(&'a [TenantId]),
    /// Every tenant file, plus every tenant with a sync state but no file any more.
    All,
}

/// The selected tenants with their sync state (one query, whatever their number).
pub async fn resolve(
    store: &PgStore,
    dir: &Path,
    selection: Selection<'_>,
) -> Result<Vec<KnownTenant>> {
    let mut states: BTreeMap<TenantId, StatusState> =
        store.sync_states().await?.into_iter().collect();
    match selection {
        Selection::Named(ids) => {
            let mut seen = std::collections::HashSet::new();
            let mut tenants = Vec::new();
            for id in ids.iter().filter(|id| seen.insert(*id)) {
                let has_file = dir.join(format!("{id}.json")).is_file();
                let state = states.remove(id);
                if !has_file && state.is_none() {
                    return Err(Error::UnknownTenant {
                        tenant: id.clone(),
                        dir: dir.display().to_string(),
                    });
                }
                tenants.push(KnownTenant {
                    id: id.clone(),
                    has_file,
                    state,
                });
            }
            Ok(tenants)
        }
        Selection::All => {
            let files = tenant_files(dir)?;
            let mut all: BTreeMap<TenantId, KnownTenant> = BTreeMap::new();
            for id in files {
                let state = states.remove(&id);
                all.insert(
                    id.clone(),
                    KnownTenant {
                        id,
                        has_file: true,
                        state,
                    },
                );
            }
            for (id, state) in states {
                all.insert(
                    id.clone(),
                    KnownTenant {
                        id,
                        has_file: false,
                        state: Some(state),
                    },
                );
            }
            Ok(all.into_values().collect())
        }
    }
}

/// The ids of the `*.json` files in `dir`. A directory that cannot be read is a configuration
/// error (exit 3): the fleet would silently look empty. A file whose name is no tenant id is
/// skipped with a warning (the sync commands fail it).
pub fn tenant_files(dir: &Path) -> Result<Vec<TenantId>> {
    let cannot = |e: std::io::Error| {
        Error::Config(format!("cannot list tenants dir {}: {e}", dir.display()))
    };
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(cannot)? {
        let name = entry.map_err(cannot)?.file_name();
        let name = name.to_string_lossy();
        // Kubernetes Secret volumes hold `..data` links and dot-directories.
        if name.starts_with('.') {
            continue;
        }
        if let Some(stem) = name.strip_suffix(".json") {
            match TenantId::parse(stem) {
                Ok(id) => ids.push(id),
                Err(e) => {
                    tracing::warn!("skipping tenant file {}: {e}", dir.join(&*name).display())
                }
            }
        }
    }
    ids.sort();
    Ok(ids)
}
