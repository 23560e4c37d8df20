//! What a connection needs to secure itself, built once per producer from its config.

use std::fmt;
#[cfg(feature = "tls")]
use std::sync::Arc;

use crate::error::Error;
use crate::security::{SaslCredentials, SecurityProtocol, SslConfig};

/// TLS and SASL for a connection: the security protocol, the rustls client configuration
/// (trust roots, client certificate) and the SASL credentials.
///
/// Building it reads the stores, so bad files fail when the producer is created, not on
/// the first connection. `Debug` shows the protocol and the mechanism, no secret.
#[derive(Clone, Default)]
pub struct ConnectionSecurity {
    pub(crate) protocol: SecurityProtocol,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) sasl: Option<SaslCredentials>,
}

impl ConnectionSecurity {
    /// Plaintext without authentication.
    pub fn plaintext() -> Self {
        ConnectionSecurity::default()
    }

    /// The security for `protocol`: TLS from `ssl` when the protocol uses TLS, `sasl` when
    /// it uses SASL (required then).
    pub(crate) fn new(
        protocol: SecurityProtocol,
        ssl: &SslConfig,
        sasl: Option<SaslCredentials>,
    ) -> Result<Self, Error> {
        if protocol.uses_sasl() && sasl.is_none() {
            return Err(Error::Config(format!(
                "security.protocol={protocol} needs SASL credentials: set sasl.mechanism and \
                 sasl.jaas.config"
            )));
        }
        #[cfg(feature = "tls")]
        let tls = if protocol.uses_tls() {
            Some(crate::security::client_config(ssl)?)
        } else {
            None
        };
        #[cfg(not(feature = "tls"))]
        if protocol.uses_tls() {
            let _ = ssl;
            return Err(Error::Config(format!(
                "security.protocol={protocol} needs TLS, and this build has no TLS support \
                 (enable the crate feature \"tls\")"
            )));
        }
        Ok(ConnectionSecurity {
            protocol,
            #[cfg(feature = "tls")]
            tls,
            sasl: if protocol.uses_sasl() { sasl } else { None },
        })
    }

    /// The security protocol.
    pub fn protocol(&self) -> SecurityProtocol {
        self.protocol
    }
}

impl fmt::Debug for ConnectionSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionSecurity")
            .field("protocol", &self.protocol)
            .field(
                "sasl_mechanism",
                &self.sasl.as_ref().map(|s| s.mechanism().name()),
            )
            .finish_non_exhaustive()
    }
}
