//! Logging on stderr: text for a person at a terminal, JSON lines for a log store otherwise (or
//! with `--log-format json`), filtered by `KEYBUZZ_LOG`.
//!
//! A JSON line is one flat object: `timestamp` (UTC, RFC 3339, microseconds), `level`,
//! `message`, `target`, `spans` (the names of the spans in scope, outermost first, when there are
//! any), then the fields of every span in scope and of the event itself, all at the top level, so
//! that a log store can filter on `tenant` or `run_id` without digging. A field set by an inner
//! span overrides an outer one's, and the event's own fields win over both. A field named like
//! one of the five keys above is written as `field.<name>`.
//!
//! This module formats what it is given and never adds anything: keeping secrets out of log
//! lines is the job of whoever logs (the engine logs no token, the store no URL). An invalid
//! `KEYBUZZ_LOG` is an error for the caller to report (exit 3), not a silent fall-back to `info`.

use std::fmt;
use std::io::IsTerminal;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::cli::LogFormat;

/// The environment variable holding the log filter.
pub const FILTER_VAR: &str = "KEYBUZZ_LOG";

/// Sets up the process's logging. `Err` carries a message for the operator (an invalid filter).
pub fn init(format: LogFormat) -> Result<(), String> {
    let value = match std::env::var(FILTER_VAR) {
        Ok(v) => Some(v),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(format!("{FILTER_VAR} is not valid UTF-8"));
        }
    };
    let filter = parse_filter(value.as_deref())?;
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .init();
    } else {
        builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            // Lines and the progress display's bars take turns on the terminal.
            .with_writer(|| crate::commands::progress::TerminalWriter)
            .init();
    }
    Ok(())
}

/// `KEYBUZZ_LOG`'s value as a filter: unset or blank is `info`; anything else must parse.
pub fn parse_filter(value: Option<&str>) -> Result<EnvFilter, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(EnvFilter::new("info")),
        Some(v) => EnvFilter::builder().parse(v).map_err(|e| {
            format!(
                "invalid {FILTER_VAR} filter {v:?}: {e} (examples: info, debug, keybuzz_sync=debug,warn)"
            )
        }),
    }
}

/// The keys every line has (or may have), which no field may take.
const RESERVED: [&str; 5] = ["timestamp", "level", "message", "target", "spans"];

/// Formats an event as one flat JSON object per line. Needs span fields stored as JSON
/// ([`JsonFields`]), which it reads back from each span's extensions.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Map::new();
        let mut spans = Vec::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                spans.push(Value::String(span.name().to_owned()));
                let extensions = span.extensions();
                let Some(stored) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                // With JsonFields the stored text is a JSON object; anything else is skipped.
                if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(stored.as_str()) {
                    fields.extend(map);
                }
            }
        }
        event.record(&mut Fields(&mut fields));

        let message = match fields.remove("message") {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        // Events bridged from the `log` crate carry their origin as fields.
        let target = match fields.remove("log.target") {
            Some(Value::String(t)) => t,
            _ => event.metadata().target().to_owned(),
        };
        fields.retain(|k, _| !k.starts_with("log."));

        let mut line = String::with_capacity(256);
        line.push('{');
        push_pair(&mut line, "timestamp", &Value::String(now()));
        line.push(',');
        push_pair(
            &mut line,
            "level",
            &Value::String(event.metadata().level().to_string()),
        );
        line.push(',');
        push_pair(&mut line, "message", &Value::String(message));
        line.push(',');
        push_pair(&mut line, "target", &Value::String(target));
        if !spans.is_empty() {
            line.push(',');
            push_pair(&mut line, "spans", &Value::Array(spans));
        }
        for (key, value) in &fields {
            line.push(',');
            if RESERVED.contains(&key.as_str()) {
                push_pair(&mut line, &format!("field.{key}"), value);
            } else {
                push_pair(&mut line, key, value);
            }
        }
        line.push('}');
        writeln!(writer, "{line}")
    }
}

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn push_pair(line: &mut String, key: &str, value: &Value) {
    // Serializing a string or a Value cannot fail.
    line.push_str(&serde_json::to_string(key).unwrap_or_default());
    line.push(':');
    line.push_str(&serde_json::to_string(value).unwrap_or_default());
}

/// Records an event's fields as JSON values: numbers and booleans as such, the rest as text.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        self.0.insert(field.name().to_owned(), value);
    }
}

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(value.to_string()));
        self.put(field, value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` values and the message (format arguments) print as themselves through Debug.
        self.put(field, format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer that keeps what it is given, for reading back in a test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Runs `f` with the JSON formatter installed, returns the lines it wrote, parsed.
    fn json_lines(f: impl FnOnce()) -> Vec<Map<String, Value>> {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| match serde_json::from_str::<Value>(l) {
                Ok(Value::Object(map)) => map,
                other => panic!("not a JSON object: {l} ({other:?})"),
            })
            .collect()
    }

    #[test]
    fn every_line_has_timestamp_level_message_and_target() {
        let lines = json_lines(|| {
            tracing::info!("plain {}", 42);
            tracing::warn!(count = 3u64, "with a field");
            tracing::debug!(only = true);
        });
        assert_eq!(lines.len(), 3);
        for line in &lines {
            for key in ["timestamp", "level", "message", "target"] {
                assert!(line.contains_key(key), "{key} missing in {line:?}");
            }
            let ts = line["timestamp"].as_str().unwrap();
            assert!(ts.ends_with('Z') && ts.len() == 27, "{ts}");
            assert!(!line.contains_key("spans"), "no span in scope: {line:?}");
        }
        assert_eq!(lines[0]["message"], "plain 42");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["count"], 3);
        assert_eq!(lines[2]["message"], "");
        assert_eq!(lines[2]["only"], true);
    }

    #[test]
    fn span_fields_are_flattened_to_the_top_level_and_event_fields_win() {
        let lines = json_lines(|| {
            let pass = tracing::info_span!("pass", tenant = "t1", run_id = tracing::field::Empty);
            let _pass = pass.enter();
            tracing::info!("before the run id");
            pass.record("run_id", 17i64);
            let inner = tracing::debug_span!("finish_run", tenant = %"t1", outcome = "success");
            let _inner = inner.enter();
            tracing::info!(orders = 25u64, "run finished");
            tracing::info!(tenant = "other", outcome = "failed", "event fields win");
        });
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["tenant"], "t1");
        assert!(!lines[0].contains_key("run_id"), "not recorded yet");
        assert_eq!(lines[0]["spans"], serde_json::json!(["pass"]));

        let line = &lines[1];
        assert_eq!(line["tenant"], "t1");
        assert_eq!(line["run_id"], 17);
        assert_eq!(line["outcome"], "success");
        assert_eq!(line["orders"], 25);
        assert_eq!(line["message"], "run finished");
        assert_eq!(line["spans"], serde_json::json!(["pass", "finish_run"]));

        assert_eq!(lines[2]["tenant"], "other");
        assert_eq!(lines[2]["outcome"], "failed");
        assert_eq!(lines[2]["run_id"], 17);
    }

    #[test]
    fn fields_named_like_the_fixed_keys_do_not_replace_them() {
        let lines = json_lines(|| {
            let span = tracing::info_span!("s", level = "span-level");
            let _s = span.enter();
            tracing::error!(target = "not-the-target", "boom");
        });
        let line = &lines[0];
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["field.level"], "span-level");
        assert_eq!(line["field.target"], "not-the-target");
        assert_eq!(line["message"], "boom");
        assert_ne!(line["target"], "not-the-target");
    }

    #[test]
    fn errors_are_text_and_lines_never_break() {
        let err = std::io::Error::other("disk\nfull");
        let lines = json_lines(|| {
            tracing::error!(error = &err as &dyn std::error::Error, "multi\nline");
        });
        assert_eq!(lines.len(), 1, "one event, one line");
        assert_eq!(lines[0]["error"], "disk\nfull");
        assert_eq!(lines[0]["message"], "multi\nline");
    }

    #[test]
    fn an_invalid_filter_is_an_error_naming_the_variable() {
        assert!(parse_filter(None).is_ok());
        assert!(parse_filter(Some("  ")).is_ok());
        assert!(parse_filter(Some("keybuzz_sync=debug,warn")).is_ok());
        for bad in ["info,keybuzz_sync=loud", "[{=", "debug,=info="] {
            let err = parse_filter(Some(bad)).unwrap_err();
            assert!(err.contains("KEYBUZZ_LOG") && err.contains(bad), "{err}");
        }
    }
}
