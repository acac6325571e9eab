//! Typed configuration: tenant files, the application's LWA credentials, endpoints and the
//! engine's tuning knobs.
//!
//! This module owns validation: everything that leaves it is known good (tenant files read and
//! checked, https URLs unless an override asked for http, marketplace lists within Amazon's
//! limits). It never logs, and secrets only leave it wrapped in [`Secret`], whose `Debug` is
//! redacted and which has no `Display`.

mod reports;

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;

use crate::error::{Error, Result};
use crate::model::{InitialImport, OrdersApi, Region, Secret, TenantId, WindowRules};
pub use reports::ReportSettings;

/// A value from a tenant file, quoted in an error only when it is short and plain enough that it
/// cannot be a token or secret.
fn shown(value: &str) -> String {
    let plain = value.len() <= 20
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if plain {
        format!("{value:?}")
    } else {
        "(value not shown)".to_owned()
    }
}

/// One tenant, validated.
#[derive(Debug, Clone)]
pub struct TenantConfig {
    pub id: TenantId,
    pub refresh_token: Secret,
    pub region: Region,
    pub marketplace_ids: Vec<String>,
    pub orders_api: OrdersApi,
    /// Ask v2026 searchOrders for BUYER and RECIPIENT (needs Amazon's PII roles).
    pub include_pii: bool,
    /// How the tenant's first sync reads its history (`initialImport`).
    pub initial_import: InitialImport,
}

/// A tenant file is a few hundred bytes; anything much larger is not one.
const MAX_TENANT_FILE_BYTES: u64 = 64 * 1024;

impl TenantConfig {
    fn path(dir: &Path, id: &TenantId) -> PathBuf {
        dir.join(format!("{id}.json"))
    }

    /// Whether `<dir>/<id>.json` exists at all (a broken file is a tenant with a problem; no
    /// file is no tenant).
    pub fn exists(dir: &Path, id: &TenantId) -> bool {
        Self::path(dir, id).exists()
    }

    /// Reads `<dir>/<id>.json`. Only a regular file is read (symbolic links to one are fine, as
    /// Kubernetes Secret volumes use them): a FIFO or a device would hang or flood the run.
    pub fn load(dir: &Path, id: &TenantId) -> Result<Self> {
        let path = Self::path(dir, id);
        let fail = |what: String| Error::Config(format!("tenant {id}: {}: {what}", path.display()));
        let meta = std::fs::metadata(&path).map_err(|e| fail(format!("cannot read: {e}")))?;
        if !meta.is_file() {
            return Err(fail("not a regular file".to_owned()));
        }
        if meta.len() > MAX_TENANT_FILE_BYTES {
            return Err(fail(format!(
                "{} bytes is too large for a tenant file (at most {MAX_TENANT_FILE_BYTES})",
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| fail(format!("cannot read: {e}")))?;
        Self::parse(id.clone(), &text, &path)
    }

    /// Reads a tenant file by hand rather than through serde's derive: serde's messages quote
    /// the offending value (`invalid type: string "Atzr|..."`), and a refresh token pasted under
    /// the wrong key must not reach a log. Values are quoted only when they cannot be secrets.
    fn parse(id: TenantId, text: &str, path: &Path) -> Result<Self> {
        let fail = |what: String| Error::Config(format!("tenant {id}: {}: {what}", path.display()));
        // Editors on Windows may start a UTF-8 file with a byte order mark; JSON does not allow
        // one, but it is no mistake worth failing a tenant over.
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        // Syntax errors name a line and column, never a value.
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            fail(format!(
                "not valid JSON ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        let serde_json::Value::Object(fields) = value else {
            return Err(fail("expected a JSON object".to_owned()));
        };
        // `Value` keeps the last of two equal keys: two refresh tokens, say, and the wrong one
        // silently wins. Read the keys again, in order, to refuse that.
        if let Some(duplicate) = duplicate_key(text) {
            return Err(fail(format!("key {} appears twice", shown(&duplicate))));
        }
        const KEYS: [&str; 6] = [
            "refreshToken",
            "region",
            "marketplaceIds",
            "ordersApi",
            "includePii",
            "initialImport",
        ];
        if let Some(unknown) = fields.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(fail(format!(
                "unknown key {} (expected one of {})",
                shown(unknown),
                KEYS.join(", ")
            )));
        }
        let string = |key: &str| -> Result<Option<&str>> {
            match fields.get(key) {
                None => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(fail(format!("{key} must be a string"))),
            }
        };
        let refresh_token = match string("refreshToken")? {
            Some(t) if !t.trim().is_empty() => Secret::new(t),
            _ => return Err(fail("refreshToken is missing or empty".to_owned())),
        };
        let region = match string("region")? {
            Some("na") => Region::Na,
            Some("eu") => Region::Eu,
            Some("fe") => Region::Fe,
            Some(other) => {
                return Err(fail(format!(
                    "region {} is not one of na, eu, fe",
                    shown(other)
                )));
            }
            None => return Err(fail("region is missing (na, eu or fe)".to_owned())),
        };
        let orders_api = match string("ordersApi")? {
            None | Some("2026-01-01") => OrdersApi::V2026,
            Some("v0") => OrdersApi::V0,
            Some(other) => {
                return Err(fail(format!(
                    "ordersApi {} is not one of \"2026-01-01\", \"v0\"",
                    shown(other)
                )));
            }
        };
        let include_pii = match fields.get("includePii") {
            None => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(_) => return Err(fail("includePii must be true or false".to_owned())),
        };
        let initial_import = match string("initialImport")? {
            None | Some("ordersApi") => InitialImport::OrdersApi,
            Some("reports") => InitialImport::Reports,
            Some(other) => {
                return Err(fail(format!(
                    "initialImport {} is not one of \"reports\", \"ordersApi\"",
                    shown(other)
                )));
            }
        };
        let marketplace_ids = match fields.get("marketplaceIds") {
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .map(|m| match m.as_str() {
                    Some(m)
                        if (5..=20).contains(&m.len())
                            && m.chars()
                                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) =>
                    {
                        Ok(m.to_owned())
                    }
                    Some(m) => Err(fail(format!(
                        "{} is not a marketplace id (like A13V1IB3VIYZZH)",
                        shown(m)
                    ))),
                    None => Err(fail("marketplaceIds must hold strings".to_owned())),
                })
                .collect::<Result<Vec<_>>>()?,
            _ => {
                return Err(fail(
                    "marketplaceIds is missing (a list of marketplace ids)".to_owned(),
                ));
            }
        };
        if marketplace_ids.is_empty() || marketplace_ids.len() > 50 {
            return Err(fail(format!(
                "marketplaceIds must list 1 to 50 marketplaces, found {}",
                marketplace_ids.len()
            )));
        }
        Ok(TenantConfig {
            id,
            refresh_token,
            region,
            marketplace_ids,
            orders_api,
            include_pii,
            initial_import,
        })
    }

    /// The tenant ids of every `*.json` file in the directory, sorted. A file whose name is not
    /// a valid tenant id is an `Err` in the list, so that it fails alone, not the whole run.
    pub fn list(dir: &Path) -> Result<Vec<Result<TenantId>>> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            Error::Config(format!("cannot list tenants dir {}: {e}", dir.display()))
        })?;
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| {
                Error::Config(format!("cannot list tenants dir {}: {e}", dir.display()))
            })?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // Kubernetes Secret volumes hold `..data` links and dot-directories: skip them.
            if name.starts_with('.') {
                continue;
            }
            if let Some(stem) = name.strip_suffix(".json") {
                ids.push(TenantId::parse(stem).map_err(|e| {
                    Error::Config(format!("tenant file {}: {e}", dir.join(&*name).display()))
                }));
            }
            // (A `.json` entry that is not a regular file is listed too: `load` reports it.)
        }
        ids.sort_by(|a, b| match (a, b) {
            (Ok(a), Ok(b)) => a.cmp(b),
            (Ok(_), Err(_)) => std::cmp::Ordering::Less,
            (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
            (Err(a), Err(b)) => a.to_string().cmp(&b.to_string()),
        });
        if ids.is_empty() {
            return Err(Error::Config(format!(
                "no tenant files (*.json) in {}",
                dir.display()
            )));
        }
        Ok(ids)
    }
}

/// The first top-level key of a JSON object that appears twice, if any. Only called on text
/// already known to be a JSON object.
fn duplicate_key(text: &str) -> Option<String> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                if !seen.insert(key.clone()) {
                    return Ok(Some(key));
                }
            }
            Ok(None)
        }
    }
    serde_json::Deserializer::from_str(text)
        .deserialize_map(Keys)
        .ok()
        .flatten()
}

/// The SP-API application's Login with Amazon credentials.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    pub client_id: String,
    pub client_secret: Secret,
}

/// Where to send requests.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Replaces the regional SP-API endpoint for every tenant (sandbox, simulator, tests).
    pub spapi_override: Option<Url>,
    pub lwa_token_url: Url,
    /// Where each tenant's metrics are pushed after its pass (a Prometheus Pushgateway's base
    /// URL); `None`: not pushed.
    pub pushgateway: Option<Url>,
}

pub const DEFAULT_LWA_TOKEN_URL: &str = "https://api.amazon.com/auth/o2/token";

impl Endpoints {
    pub fn new(spapi_override: Option<&str>, lwa_token_url: Option<&str>) -> Result<Self> {
        let spapi_override = spapi_override
            .map(|u| parse_url("SPAPI_ENDPOINT", u))
            .transpose()?;
        let lwa_token_url = parse_url(
            "LWA_TOKEN_URL",
            lwa_token_url.unwrap_or(DEFAULT_LWA_TOKEN_URL),
        )?;
        Ok(Endpoints {
            spapi_override,
            lwa_token_url,
            pushgateway: None,
        })
    }

    /// Adds the Pushgateway (`KEYBUZZ_PUSHGATEWAY_URL`), checked like the other URLs.
    pub fn with_pushgateway(mut self, pushgateway: Option<&str>) -> Result<Self> {
        self.pushgateway = pushgateway
            .filter(|u| !u.is_empty())
            .map(|u| parse_url("KEYBUZZ_PUSHGATEWAY_URL", u))
            .transpose()?;
        Ok(self)
    }

    /// The SP-API base URL for a tenant.
    pub fn spapi_base(&self, region: Region) -> Url {
        match &self.spapi_override {
            Some(url) => url.clone(),
            None => Url::parse(region.default_endpoint()).expect("static URL is valid"),
        }
    }
}

fn parse_url(name: &str, value: &str) -> Result<Url> {
    let url =
        Url::parse(value).map_err(|e| Error::Config(format!("{name} is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(Error::Config(format!("{name} must be an http(s) URL")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Config(format!(
            "{name} must not carry credentials in the URL"
        )));
    }
    Ok(url)
}

/// Retry policy for SP-API and LWA requests.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff delay; doubles each retry, with jitter.
    pub base_delay: Duration,
    /// Longest single backoff delay.
    pub max_delay: Duration,
    /// Upper bound on the sum of backoff delays for one request.
    pub max_total_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            max_total_delay: Duration::from_secs(300),
        }
    }
}

/// How a pass behaves; one value for every tenant of a run.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// How far before the cursor a window starts, because Amazon indexes updates late.
    pub overlap: chrono::Duration,
    /// Where a tenant's first pass starts, back from now.
    pub initial_lookback: chrono::Duration,
    /// How far behind now a window ends. Amazon rejects `LastUpdatedBefore` later than now - 2 min
    /// by its own clock; 15 s more absorb a host clock running a little ahead.
    pub upper_lag: chrono::Duration,
    /// Orders per page (1..=100).
    pub page_size: u32,
    /// Per-order item calls (v0 getOrderItems, v2026 getOrder) allowed in one pass for orders
    /// whose items are missing or stale; the rest stay marked and wait for the next pass.
    pub items_budget: u32,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// Largest SP-API answer read; larger ones are an error.
    pub max_response_bytes: u64,
    /// The most pages one window may take before its pagination is deemed endless.
    pub max_window_pages: u32,
    /// How often a deeper re-read (sweep) of the last `sweep_window` runs; `None`: never.
    pub sweep_every: Option<chrono::Duration>,
    pub sweep_window: chrono::Duration,
    /// Imports through the Reports API (`backfill --via reports`, `initialImport`).
    pub reports: ReportSettings,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            overlap: chrono::Duration::minutes(10),
            initial_lookback: chrono::Duration::days(30),
            upper_lag: chrono::Duration::seconds(135),
            page_size: 100,
            items_budget: 300,
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            max_response_bytes: 64 * 1024 * 1024,
            // 5,000 pages of 100 orders: half a million orders changed in one window.
            max_window_pages: 5_000,
            sweep_every: None,
            sweep_window: chrono::Duration::hours(24),
            reports: ReportSettings::default(),
        }
    }
}

impl SyncSettings {
    /// The settings that shape a delta window.
    pub fn window_rules(&self) -> WindowRules {
        WindowRules {
            overlap: self.overlap,
            initial_lookback: self.initial_lookback,
            upper_lag: self.upper_lag,
        }
    }
}

/// Everything a sync command needs besides the database.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub tenants_dir: PathBuf,
    pub credentials: AppCredentials,
    pub endpoints: Endpoints,
    pub settings: SyncSettings,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TenantConfig> {
        TenantConfig::parse(TenantId::parse("t1").unwrap(), text, Path::new("t1.json"))
    }

    #[test]
    fn tenant_file_defaults_to_v2026_and_no_pii() {
        let t =
            parse(r#"{"refreshToken":"Atzr|x","region":"eu","marketplaceIds":["A13V1IB3VIYZZH"]}"#)
                .unwrap();
        assert_eq!(t.orders_api, OrdersApi::V2026);
        assert!(!t.include_pii);
        let t = parse(r#"{"refreshToken":"Atzr|x","region":"na","marketplaceIds":["ATVPDKIKX0DER"],"ordersApi":"v0","includePii":true}"#)
            .unwrap();
        assert_eq!(t.orders_api, OrdersApi::V0);
        assert!(t.include_pii);
    }

    #[test]
    fn initial_import_is_the_orders_api_unless_the_file_asks_for_reports() {
        let base = r#""refreshToken":"Atzr|x","region":"eu","marketplaceIds":["A13V1IB3VIYZZH"]"#;
        let t = parse(&format!("{{{base}}}")).unwrap();
        assert_eq!(t.initial_import, InitialImport::OrdersApi);
        let t = parse(&format!(r#"{{{base},"initialImport":"reports"}}"#)).unwrap();
        assert_eq!(t.initial_import, InitialImport::Reports);
        let t = parse(&format!(r#"{{{base},"initialImport":"ordersApi"}}"#)).unwrap();
        assert_eq!(t.initial_import, InitialImport::OrdersApi);
        for (value, expected) in [
            (r#""report""#, "initialImport \"report\" is not one of"),
            ("true", "initialImport must be a string"),
            (r#""Atzr|SECRET-LONG-TOKEN-VALUE""#, "(value not shown)"),
        ] {
            let err = parse(&format!(r#"{{{base},"initialImport":{value}}}"#))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains("SECRET"), "{err}");
        }
    }

    #[test]
    fn tenant_file_errors_name_the_problem_and_hide_the_token() {
        let err = parse(
            r#"{"refreshToken":"Atzr|SECRET","region":"mars","marketplaceIds":["A13V1IB3VIYZZH"]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("mars") || err.contains("region"), "{err}");
        assert!(!err.contains("SECRET"), "{err}");

        let err = parse(r#"{"refreshToken":"Atzr|SECRET","region":"eu","marketplaceIds":["A13V1IB3VIYZZH"],"orderApi":"v0"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("orderApi"),
            "a typo must not silently fall back: {err}"
        );

        let err = parse(r#"{"refreshToken":"Atzr|SECRET","region":"eu","marketplaceIds":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("marketplaceIds"), "{err}");
        assert!(!err.contains("SECRET"));
    }

    #[test]
    fn a_token_under_the_wrong_key_is_not_quoted() {
        for text in [
            r#"{"refreshToken":"x","region":"Atzr|SECRET-LONG-TOKEN-VALUE","marketplaceIds":["A13V1IB3VIYZZH"]}"#,
            r#"{"refreshToken":"x","region":"eu","marketplaceIds":["Atzr|SECRET"]}"#,
            r#"{"refreshToken":"x","region":"eu","marketplaceIds":["A13V1IB3VIYZZH"],"ordersApi":"Atzr|SECRET"}"#,
            r#"{"refreshToken":"x","region":"eu","marketplaceIds":["A13V1IB3VIYZZH"],"Atzr|SECRET":1}"#,
            r#"{"refreshToken":["Atzr|SECRET"],"region":"eu","marketplaceIds":["A13V1IB3VIYZZH"]}"#,
            r#"{"refreshToken":"Atzr|SECRET" "region":"eu"}"#,
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(!err.contains("SECRET"), "{err}");
            assert!(err.contains("t1.json"), "{err}");
        }
    }

    #[test]
    fn a_byte_order_mark_is_accepted_and_a_duplicate_key_refused() {
        let t = parse(
            "\u{FEFF}{\"refreshToken\":\"Atzr|x\",\"region\":\"eu\",\"marketplaceIds\":[\"A13V1IB3VIYZZH\"]}",
        );
        assert!(t.is_ok(), "{t:?}");
        let err = parse(r#"{"refreshToken":"Atzr|SECRET-1","region":"eu","marketplaceIds":["A13V1IB3VIYZZH"],"refreshToken":"Atzr|SECRET-2"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("refreshToken") && err.contains("twice"),
            "{err}"
        );
        assert!(!err.contains("SECRET"), "{err}");
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let id = TenantId::parse("fifo").unwrap();
        std::fs::create_dir(dir.path().join("fifo.json")).unwrap();
        let err = TenantConfig::load(dir.path(), &id).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let big = TenantId::parse("big").unwrap();
        std::fs::write(dir.path().join("big.json"), vec![b' '; 100_000]).unwrap();
        let err = TenantConfig::load(dir.path(), &big)
            .unwrap_err()
            .to_string();
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let t = parse(
            r#"{"refreshToken":"Atzr|SECRET","region":"eu","marketplaceIds":["A13V1IB3VIYZZH"]}"#,
        )
        .unwrap();
        assert!(!format!("{t:?}").contains("SECRET"));
    }

    #[test]
    fn endpoint_urls_with_credentials_are_refused() {
        assert!(Endpoints::new(Some("https://user:pw@example.com"), None).is_err());
        assert!(Endpoints::new(Some("ftp://example.com"), None).is_err());
        assert!(Endpoints::new(Some("http://127.0.0.1:8700"), None).is_ok());
        let base = || Endpoints::new(None, None).unwrap();
        assert!(
            base()
                .with_pushgateway(Some("http://u:pw@pgw:9091"))
                .is_err()
        );
        assert!(base().with_pushgateway(Some("ftp://pgw")).is_err());
        let pgw = base().with_pushgateway(Some("http://pgw:9091")).unwrap();
        assert_eq!(pgw.pushgateway.unwrap().as_str(), "http://pgw:9091/");
        assert!(base().with_pushgateway(None).unwrap().pushgateway.is_none());
    }
}
