//! [`Secret`]: refresh tokens, client secrets, access tokens and database URLs.
//!
//! A `Secret` has no `Display`, and its `Debug` is redacted, so it cannot reach a log line or an
//! error message by accident; the one place that must send it calls [`Secret::expose`].

use std::fmt;

/// A string that must never be printed.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that has to send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

/// Lets clap parse a flag or environment variable straight into a `Secret`, so the value is
/// never held as a plain `String`.
impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        assert_eq!(format!("{:?}", Secret::new("Atzr|x")), "Secret([REDACTED])");
    }
}
