//! The engine's one error type.
//!
//! Every failure the library can report is a variant of [`Error`]. The binary turns them into exit
//! codes (its `ExitStatus`); the engine turns them into `last_error` and `sync_runs.error`.
//! Messages name what was wrong (tenant, operation, field, value) and never carry a secret:
//! access tokens, refresh tokens, the LWA client secret and database passwords are not part of
//! any variant.

use crate::model::{InvalidTenantId, TenantId};

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag, an environment variable or a tenant file is missing or invalid.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A tenant id (from a flag or a file name) that cannot be one.
    #[error("invalid configuration: {0}")]
    InvalidTenantId(#[from] InvalidTenantId),

    /// Something this process needs failed in a way that is not the operator's configuration,
    /// Amazon or the database (the TLS backend, writing output).
    #[error("internal error: {0}")]
    Internal(String),

    /// Login with Amazon answered `invalid_grant`: the refresh token was revoked or expired.
    #[error(
        "tenant {tenant}: the tenant must re-authorize the application (Login with Amazon answered invalid_grant)"
    )]
    ReauthorizationRequired { tenant: TenantId },

    /// Login with Amazon refused the exchange for another reason (bad client id/secret, ...).
    #[error("Login with Amazon failed: {0}")]
    Auth(String),

    /// SP-API answered with an error status that is not worth retrying (or retries ran out).
    #[error("SP-API {operation} answered HTTP {status} ({code}): {message}")]
    Api {
        operation: &'static str,
        status: u16,
        code: String,
        message: String,
    },

    /// SP-API kept answering 429 until the request could not wait any longer.
    #[error(
        "SP-API {operation}: still throttled (HTTP 429 QuotaExceeded) after {attempts} attempt(s); {stopped_by}"
    )]
    Throttled {
        operation: &'static str,
        attempts: u32,
        /// What stopped the retries.
        stopped_by: &'static str,
    },

    /// The request did not complete: timeout, refused or reset connection, broken body.
    #[error("SP-API {operation}: request failed: {detail}")]
    Transport {
        operation: &'static str,
        detail: String,
    },

    /// Amazon answered 2xx, but the body is not what the API promises (not JSON, truncated,
    /// missing a required field, a malformed date or amount).
    #[error("SP-API {operation}: invalid response: {detail}")]
    BadResponse {
        operation: &'static str,
        detail: String,
    },

    /// Another process holds this tenant's sync lock.
    #[error(
        "tenant {0}: a sync pass is already running for this tenant elsewhere; nothing was changed"
    )]
    AlreadyRunning(TenantId),

    /// The database cannot be reached (refused, no answer, login failed).
    #[error("database: {0}")]
    Unavailable(String),

    /// The pass no longer holds its tenant's lock: its lock connection ended, or another pass
    /// took the tenant over (its fencing token is newer). Nothing more was committed.
    #[error(
        "tenant {tenant}: the tenant's sync lock was lost ({detail}); this pass stopped and committed nothing more"
    )]
    LockLost { tenant: TenantId, detail: String },

    /// The run's time budget (`--max-duration`) ends before this request could be sent and
    /// answered. Not a failure: the pass stops, keeping what it committed, and is `partial`.
    #[error("SP-API {operation}: the run's time budget is spent; the next run continues")]
    OutOfTime { operation: &'static str },

    /// An answer larger than the configured cap (`--max-response-mb`).
    #[error("SP-API {operation}: the response is larger than the {limit_mib} MiB cap")]
    ResponseTooLarge {
        operation: &'static str,
        limit_mib: u64,
    },

    /// Amazon's pagination does not end: a page token came back again, or a window needed an
    /// absurd number of pages. For one order's items it concerns that order only (its items
    /// wait for a later pass); for a window's pages it ends the pass.
    #[error("SP-API {operation}: pagination does not end: {detail}")]
    EndlessPages {
        operation: &'static str,
        detail: String,
    },
    /// A tenant id that names no tenant: no tenant file, and nothing in the database either
    /// (a typo, most likely). Not "never synced", which is a tenant with a file.
    #[error("unknown tenant {tenant}: no tenant file in {dir} and never synced")]
    UnknownTenant { tenant: TenantId, dir: String },

    /// The Pushgateway refused the metrics or could not be reached. Never fails a pass.
    #[error("pushing metrics to the Pushgateway failed: {0}")]
    MetricsPush(String),

    /// A report document could not be downloaded or read to its end: the download was refused
    /// or broke off, it passed a size cap, or it is not the GZIP XML promised. What was imported
    /// before stays; the next pass resumes after it.
    #[error("report document {document}: {detail}")]
    ReportDocument { document: String, detail: String },

    /// Report windows of an import were given up (FATAL, stuck, broken documents, each past
    /// its retries); what the others imported stays.
    #[error("report import: {0}")]
    ReportsFailed(String),

    /// Postgres failed or returned something unexpected.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),

    /// A migration failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Error {
    /// Whether trying the same request again, after a pause, may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            Error::Throttled { .. } | Error::Transport { .. } | Error::BadResponse { .. } => true,
            _ => false,
        }
    }

    /// Whether the operator's configuration is at fault (exit code 3).
    pub fn is_config(&self) -> bool {
        matches!(self, Error::Config(_) | Error::InvalidTenantId(_))
    }

    /// Whether this error ends the whole pass of a tenant, rather than a single order's items.
    pub fn is_fatal_for_tenant(&self) -> bool {
        matches!(
            self,
            Error::ReauthorizationRequired { .. }
                | Error::Auth(_)
                | Error::Config(_)
                | Error::InvalidTenantId(_)
                | Error::Internal(_)
                | Error::Database(_)
                | Error::Unavailable(_)
                | Error::LockLost { .. }
                | Error::OutOfTime { .. }
                | Error::Migrate(_)
                | Error::AlreadyRunning(_)
        ) || matches!(
            self,
            Error::Api {
                status: 401 | 403,
                ..
            }
        )
    }
}
