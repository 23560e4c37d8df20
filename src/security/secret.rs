//! [`Secret`]: a string that never shows up in logs, `Debug` output or error messages.

use std::fmt;

/// A secret string: a password, a token, or any value from `sasl.jaas.config`.
///
/// `Debug` and `Display` print `[redacted]`, so a secret stored in a configuration or a
/// credential cannot leak through logging or error formatting by accident. Call
/// [`expose`](Secret::expose) where the value is really needed (building a SASL message).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself. Use it only to build what is sent to the broker, never for logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The text every formatting of a [`Secret`] prints.
const REDACTED: &str = "[redacted]";

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_value() {
        let s = Secret::new("s3cr3t-xyz");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{s:#?}"), "[redacted]");
        assert_eq!(s.expose(), "s3cr3t-xyz");
    }

    #[test]
    fn conversions_and_equality() {
        let a: Secret = "pw".into();
        let b: Secret = String::from("pw").into();
        assert_eq!(a, b);
        assert_ne!(a, Secret::new("other"));
        assert_eq!(a.clone().expose(), "pw");
    }
}
