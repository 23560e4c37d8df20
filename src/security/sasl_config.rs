//! `sasl.*`: the SASL settings by Java's property names, plus typed credentials and an
//! OAUTHBEARER token provider for the builder.

use std::fmt;
use std::sync::Arc;

use super::{OAuthBearerTokenProvider, SaslCredentials, SaslMechanism, Secret};
use crate::error::Error;

/// The `sasl.*` settings.
///
/// Credentials come from `sasl.jaas.config` in Java's syntax, or typed from the builder
/// ([`username`](Self::username) and [`password`](Self::password), or a
/// [`token_provider`](Self::token_provider) for OAUTHBEARER), which take precedence.
/// `Debug` never shows the JAAS text, the password or a token.
#[derive(Clone, Default)]
pub struct SaslConfig {
    /// `sasl.mechanism`: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or `OAUTHBEARER`. Java's
    /// default is `GSSAPI` (Kerberos), which this client does not support, so with a SASL
    /// security protocol it must be set.
    pub mechanism: Option<SaslMechanism>,
    /// `sasl.jaas.config`: the login module and its options, in Java's syntax.
    pub jaas_config: Option<Secret>,
    /// The user name for PLAIN and SCRAM (instead of `sasl.jaas.config`).
    pub username: Option<String>,
    /// The password for PLAIN and SCRAM (instead of `sasl.jaas.config`).
    pub password: Option<Secret>,
    /// Supplies OAUTHBEARER tokens (instead of the unsecured tokens of `sasl.jaas.config`).
    pub token_provider: Option<Arc<dyn OAuthBearerTokenProvider>>,
}

impl SaslConfig {
    /// Sets one `sasl.*` property. Returns `Ok(false)` for a name that is not one of them.
    pub(crate) fn set(&mut self, name: &str, value: &str) -> Result<bool, Error> {
        match name {
            "sasl.mechanism" => {
                let v = value.trim();
                self.mechanism = if v.is_empty() { None } else { Some(v.parse()?) };
            }
            "sasl.jaas.config" => {
                self.jaas_config = Some(value)
                    .filter(|v| !v.trim().is_empty())
                    .map(Secret::new)
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `sasl.mechanism` and `sasl.jaas.config` (hidden), when set.
    pub(crate) fn to_properties(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(m) = self.mechanism {
            out.push(("sasl.mechanism", m.name().to_owned()));
        }
        if self.jaas_config.is_some() {
            out.push(("sasl.jaas.config", "[hidden]".to_owned()));
        }
        out
    }

    /// What a connection authenticates with, checked as far as it can be before
    /// connecting.
    pub(crate) fn credentials(&self) -> Result<SaslCredentials, Error> {
        let credentials = self.unchecked_credentials()?;
        credentials.check()?;
        Ok(credentials)
    }

    fn unchecked_credentials(&self) -> Result<SaslCredentials, Error> {
        let Some(mechanism) = self.mechanism else {
            return Err(Error::Config(
                "sasl.mechanism is not set, and Java's default, GSSAPI (Kerberos), is not \
                 supported: set it to PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER"
                    .into(),
            ));
        };
        if mechanism == SaslMechanism::OAuthBearer {
            if let Some(provider) = &self.token_provider {
                return Ok(SaslCredentials::OAuthBearer {
                    provider: Arc::clone(provider),
                });
            }
        } else if let (Some(username), Some(password)) = (&self.username, &self.password) {
            return Ok(match mechanism {
                SaslMechanism::Plain => SaslCredentials::Plain {
                    username: username.clone(),
                    password: password.clone(),
                },
                _ => SaslCredentials::Scram {
                    mechanism,
                    username: username.clone(),
                    password: password.clone(),
                },
            });
        }
        match &self.jaas_config {
            Some(jaas) => SaslCredentials::from_jaas(mechanism, jaas.expose()),
            None => Err(Error::Config(format!(
                "SASL/{mechanism} needs credentials: set sasl.jaas.config (or, with the \
                 builder, a user name and password{})",
                if mechanism == SaslMechanism::OAuthBearer {
                    " — for OAUTHBEARER, a token provider"
                } else {
                    ""
                }
            ))),
        }
    }
}

impl PartialEq for SaslConfig {
    /// Token providers are equal when they are the same object.
    fn eq(&self, other: &Self) -> bool {
        let providers = match (&self.token_provider, &other.token_provider) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        providers
            && self.mechanism == other.mechanism
            && self.jaas_config == other.jaas_config
            && self.username == other.username
            && self.password == other.password
    }
}

impl Eq for SaslConfig {}

impl fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslConfig")
            .field("mechanism", &self.mechanism)
            .field(
                "jaas_config",
                &self.jaas_config.as_ref().map(|_| "[redacted]"),
            )
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field(
                "token_provider",
                &self.token_provider.as_ref().map(|_| "set"),
            )
            .finish()
    }
}
