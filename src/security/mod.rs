//! Security: which protocol a connection speaks (`security.protocol`), and the client side
//! of TLS and SASL.
//!
//! Every connection runs the same chain: TCP, then TLS when the protocol is `SSL` or
//! `SASL_SSL`, then ApiVersions, then SaslHandshake and SaslAuthenticate when it is
//! `SASL_PLAINTEXT` or `SASL_SSL`.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

mod jaas;
mod oauthbearer;
mod sasl;
mod sasl_config;
mod scram;
mod secret;
mod ssl;

pub use oauthbearer::{OAuthBearerToken, OAuthBearerTokenProvider, UnsecuredTokenProvider};
pub use sasl::SaslMechanism;
pub(crate) use sasl::{SaslCredentials, SaslStep};
pub use sasl_config::SaslConfig;
pub use secret::Secret;
#[cfg(feature = "tls")]
pub(crate) use ssl::client_config;
pub use ssl::SslConfig;

/// `security.protocol`: how connections to brokers are secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SecurityProtocol {
    /// No TLS, no authentication (the default).
    #[default]
    Plaintext,
    /// TLS, optionally with a client certificate.
    Ssl,
    /// SASL authentication over plain TCP.
    SaslPlaintext,
    /// SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Java's name: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether connections start with a TLS handshake.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections authenticate with SASL after ApiVersions.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SecurityProtocol {
    type Err = Error;

    /// Java's names, case-insensitive as in Java.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
            "SSL" => Ok(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Ok(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Ok(SecurityProtocol::SaslSsl),
            _ => Err(Error::Config(format!(
                "security.protocol {s:?} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
            ))),
        }
    }
}
