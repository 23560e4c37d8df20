//! SASL mechanisms, the credentials a connection authenticates with, and the exchange a
//! connection drives through SaslAuthenticate requests.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use crate::error::Error;
use crate::security::jaas::JaasConfig;
use crate::security::oauthbearer::{
    OAuthBearerSession, OAuthBearerTokenProvider, UnsecuredTokenProvider,
};
use crate::security::scram::{self, ScramHash, ScramSession};
use crate::security::Secret;

/// `sasl.mechanism`: how a client proves its identity to the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// `PLAIN`: user name and password sent as they are (use it only over TLS).
    Plain,
    /// `SCRAM-SHA-256`: salted challenge-response (RFC 5802, RFC 7677); the password never
    /// crosses the wire.
    ScramSha256,
    /// `SCRAM-SHA-512`: as SCRAM-SHA-256 with SHA-512.
    ScramSha512,
    /// `OAUTHBEARER`: a bearer token from an identity provider (RFC 7628, KIP-255).
    OAuthBearer,
}

/// Every supported mechanism, in the order error messages list them.
const SUPPORTED: [SaslMechanism; 4] = [
    SaslMechanism::Plain,
    SaslMechanism::ScramSha256,
    SaslMechanism::ScramSha512,
    SaslMechanism::OAuthBearer,
];

impl SaslMechanism {
    /// The mechanism's registered name, as Kafka writes it: `PLAIN`, `SCRAM-SHA-256`,
    /// `SCRAM-SHA-512` or `OAUTHBEARER`.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The login module class Java pairs with this mechanism in `sasl.jaas.config`.
    fn login_module(self) -> &'static str {
        match self {
            SaslMechanism::Plain => PLAIN_MODULE,
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => SCRAM_MODULE,
            SaslMechanism::OAuthBearer => OAUTHBEARER_MODULE,
        }
    }
}

/// The supported names for error messages: `PLAIN, SCRAM-SHA-256, ...`.
fn supported_names() -> String {
    SUPPORTED.map(SaslMechanism::name).join(", ")
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SaslMechanism {
    type Err = Error;

    /// The registered name, case-sensitive as Kafka compares it (surrounding whitespace is
    /// ignored, as Kafka trims configuration strings).
    fn from_str(s: &str) -> Result<Self, Error> {
        let name = s.trim();
        if let Some(mechanism) = SUPPORTED.into_iter().find(|m| m.name() == name) {
            return Ok(mechanism);
        }
        let why = if name == "GSSAPI" {
            "sasl.mechanism GSSAPI (Kerberos) is not supported".to_string()
        } else {
            format!("sasl.mechanism {name:?} is not supported")
        };
        Err(Error::Config(format!(
            "{why}; supported mechanisms: {}",
            supported_names()
        )))
    }
}

const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const SCRAM_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
const OAUTHBEARER_MODULE: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";
const KERBEROS_MODULE: &str = "com.sun.security.auth.module.Krb5LoginModule";

/// What a connection needs to authenticate. Clone is cheap; Debug redacts secrets.
#[derive(Clone)]
pub(crate) enum SaslCredentials {
    /// SASL/PLAIN.
    Plain {
        /// The authentication identity.
        username: String,
        /// Its password.
        password: Secret,
    },
    /// SASL/SCRAM-SHA-256 or SCRAM-SHA-512.
    Scram {
        /// [`SaslMechanism::ScramSha256`] or [`SaslMechanism::ScramSha512`].
        mechanism: SaslMechanism,
        /// The user name, before SASLprep and escaping.
        username: String,
        /// Its password.
        password: Secret,
    },
    /// SASL/OAUTHBEARER with tokens from a provider.
    OAuthBearer {
        /// Asked for a token at every authentication.
        provider: Arc<dyn OAuthBearerTokenProvider>,
    },
}

impl SaslCredentials {
    /// The mechanism these credentials are for.
    pub(crate) fn mechanism(&self) -> SaslMechanism {
        match self {
            SaslCredentials::Plain { .. } => SaslMechanism::Plain,
            SaslCredentials::Scram { mechanism, .. } => *mechanism,
            SaslCredentials::OAuthBearer { .. } => SaslMechanism::OAuthBearer,
        }
    }

    /// From sasl.mechanism and sasl.jaas.config text (Java syntax). The login module must
    /// fit the mechanism:
    /// `org.apache.kafka.common.security.plain.PlainLoginModule` (username, password) for
    /// PLAIN; `org.apache.kafka.common.security.scram.ScramLoginModule` (username,
    /// password) for SCRAM-*;
    /// `org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule` for
    /// OAUTHBEARER, giving the built-in [`UnsecuredTokenProvider`] from its
    /// `unsecuredLogin*` options. `com.sun.security.auth.module.Krb5LoginModule` is a
    /// Config error (GSSAPI/Kerberos is not supported); so is a missing option, named.
    pub(crate) fn from_jaas(mechanism: SaslMechanism, jaas: &str) -> Result<Self, Error> {
        let credentials = Self::from_jaas_unchecked(mechanism, jaas)?;
        credentials.check()?;
        Ok(credentials)
    }

    fn from_jaas_unchecked(mechanism: SaslMechanism, jaas: &str) -> Result<Self, Error> {
        let config = JaasConfig::parse(jaas)?;
        check_module(mechanism, &config.module)?;
        match mechanism {
            SaslMechanism::Plain => {
                let (username, password) = username_and_password(&config)?;
                Ok(SaslCredentials::Plain { username, password })
            }
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let token_auth = config
                    .option("tokenauth")
                    .is_some_and(|v| v.expose().trim().eq_ignore_ascii_case("true"));
                if token_auth {
                    return Err(Error::Config(
                        "sasl.jaas.config: tokenauth=true (SCRAM with a delegation token) is \
                         not supported"
                            .into(),
                    ));
                }
                let (username, password) = username_and_password(&config)?;
                Ok(SaslCredentials::Scram {
                    mechanism,
                    username,
                    password,
                })
            }
            SaslMechanism::OAuthBearer => Ok(SaslCredentials::OAuthBearer {
                provider: Arc::new(UnsecuredTokenProvider::from_jaas_options(&config.options)?),
            }),
        }
    }

    /// Checks what can be checked before connecting, so that a bad name is a config error
    /// when the producer is built rather than a failure at every connect: PLAIN separates
    /// its fields with NUL bytes (a NUL inside one would shift the fields the broker
    /// reads), and SCRAM names must pass SASLprep.
    pub(crate) fn check(&self) -> Result<(), Error> {
        match self {
            SaslCredentials::Plain { username, password } => {
                if username.contains('\0') || password.expose().contains('\0') {
                    return Err(Error::Config(
                        "the SASL/PLAIN user name and password must not contain NUL \
                         characters"
                            .into(),
                    ));
                }
                Ok(())
            }
            SaslCredentials::Scram { username, .. } => scram::sasl_name(username).map(drop),
            SaslCredentials::OAuthBearer { .. } => Ok(()),
        }
    }

    /// A fresh exchange (new SCRAM nonce, new token from the provider) for one
    /// authentication or re-authentication. An error from the token provider is returned
    /// as the provider made it.
    pub(crate) fn session(&self) -> Result<Box<dyn SaslSession>, Error> {
        Ok(match self {
            SaslCredentials::Plain { username, password } => {
                Box::new(PlainSession::new(username, password))
            }
            SaslCredentials::Scram {
                mechanism,
                username,
                password,
            } => {
                let hash = match mechanism {
                    SaslMechanism::ScramSha512 => ScramHash::Sha512,
                    _ => ScramHash::Sha256,
                };
                Box::new(ScramSession::new(hash, username, password.clone())?)
            }
            SaslCredentials::OAuthBearer { provider } => {
                Box::new(OAuthBearerSession::new(provider.token()?)?)
            }
        })
    }
}

impl fmt::Debug for SaslCredentials {
    /// The mechanism and the user name; never a password, token or provider state.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("SaslCredentials");
        s.field("mechanism", &format_args!("{}", self.mechanism()));
        match self {
            SaslCredentials::Plain { username, .. } | SaslCredentials::Scram { username, .. } => {
                s.field("username", username);
            }
            SaslCredentials::OAuthBearer { .. } => {}
        }
        s.finish_non_exhaustive()
    }
}

/// Checks that the JAAS login module is the one Kafka pairs with `mechanism`.
fn check_module(mechanism: SaslMechanism, module: &str) -> Result<(), Error> {
    if module == KERBEROS_MODULE {
        return Err(Error::Config(format!(
            "sasl.jaas.config uses {KERBEROS_MODULE}: GSSAPI/Kerberos is not supported; \
             supported mechanisms: {}",
            supported_names()
        )));
    }
    let expected = mechanism.login_module();
    if module != expected {
        return Err(Error::Config(format!(
            "sasl.jaas.config login module {module} does not fit sasl.mechanism {mechanism}, \
             which needs {expected}"
        )));
    }
    Ok(())
}

/// The `username` and `password` options, both required.
fn username_and_password(config: &JaasConfig) -> Result<(String, Secret), Error> {
    let required = |key: &str| {
        config.option(key).cloned().ok_or_else(|| {
            Error::Config(format!(
                "sasl.jaas.config for {} is missing the option {key}",
                config.module
            ))
        })
    };
    let username = required("username")?.expose().to_string();
    let password = required("password")?;
    Ok((username, password))
}

/// What to do next in a SASL exchange.
#[derive(Debug)]
pub(crate) enum SaslStep {
    /// Send these bytes in a SaslAuthenticate request.
    Send(Vec<u8>),
    /// The exchange succeeded.
    Done,
}

/// One client-side SASL exchange, driven by the connection through SaslAuthenticate.
pub(crate) trait SaslSession: Send {
    /// `challenge` is None for the first call, then the auth_bytes of the broker's last
    /// SaslAuthenticate response. Returns the next bytes to send, or Done when the
    /// exchange succeeded (for SCRAM only after the server signature verified). Failures
    /// are Error::Authentication with a clear cause and no secret.
    fn step(&mut self, challenge: Option<&[u8]>) -> Result<SaslStep, Error>;

    /// When the credential itself expires (OAUTHBEARER token expiry), so
    /// re-authentication can happen before it; None for passwords.
    fn credential_expires_at(&self) -> Option<SystemTime> {
        None
    }

    /// An error the broker reported inside the exchange before failing it (OAUTHBEARER's
    /// JSON status), for the connection to name when SaslAuthenticate then fails.
    fn server_error(&self) -> Option<&str> {
        None
    }
}

/// SASL/PLAIN (RFC 4616): one message, then done once the broker answers.
struct PlainSession {
    /// `authzid NUL username NUL password` with an empty authzid, until it is sent.
    message: Option<Vec<u8>>,
    /// Whether the broker's answer arrived and the exchange is over.
    finished: bool,
}

impl PlainSession {
    fn new(username: &str, password: &Secret) -> Self {
        let mut message = Vec::with_capacity(username.len() + password.expose().len() + 2);
        message.push(0);
        message.extend_from_slice(username.as_bytes());
        message.push(0);
        message.extend_from_slice(password.expose().as_bytes());
        PlainSession {
            message: Some(message),
            finished: false,
        }
    }
}

impl SaslSession for PlainSession {
    fn step(&mut self, challenge: Option<&[u8]>) -> Result<SaslStep, Error> {
        match (challenge, self.message.take(), self.finished) {
            (None, Some(message), _) => Ok(SaslStep::Send(message)),
            // The broker answers a successful PLAIN authentication with any (empty) bytes;
            // a failure arrives as a SaslAuthenticate error instead.
            (Some(_), None, false) => {
                self.finished = true;
                Ok(SaslStep::Done)
            }
            _ => {
                self.finished = true;
                Err(Error::Authentication(
                    "PLAIN exchange driven out of order".into(),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-xyz";

    fn config_err<T>(result: Result<T, Error>) -> String {
        match result {
            Err(Error::Config(msg)) => msg,
            Err(e) => panic!("expected a config error, got {e}"),
            Ok(_) => panic!("expected a config error, got success"),
        }
    }

    fn jaas(module: &str, options: &str) -> String {
        format!("{module} required {options};")
    }

    fn sent(step: Result<SaslStep, Error>) -> Vec<u8> {
        match step {
            Ok(SaslStep::Send(bytes)) => bytes,
            other => panic!("expected bytes to send, got {other:?}"),
        }
    }

    #[test]
    fn mechanism_names_round_trip() {
        for m in SUPPORTED {
            assert_eq!(m.name().parse::<SaslMechanism>().unwrap(), m);
            assert_eq!(m.to_string(), m.name());
        }
        assert_eq!(
            " SCRAM-SHA-512 ".parse::<SaslMechanism>().unwrap(),
            SaslMechanism::ScramSha512
        );
    }

    #[test]
    fn mechanism_names_are_case_sensitive_and_gssapi_is_refused() {
        let msg = config_err("plain".parse::<SaslMechanism>());
        assert!(msg.contains("\"plain\" is not supported"), "{msg}");
        assert!(msg.contains("PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER"));
        let msg = config_err("GSSAPI".parse::<SaslMechanism>());
        assert!(msg.contains("GSSAPI (Kerberos) is not supported"), "{msg}");
        assert!(msg.contains("OAUTHBEARER"), "{msg}");
    }

    #[test]
    fn plain_credentials_from_jaas_and_exact_bytes() {
        let c = SaslCredentials::from_jaas(
            SaslMechanism::Plain,
            &jaas(PLAIN_MODULE, r#"username="alice" password="alice-secret""#),
        )
        .unwrap();
        assert_eq!(c.mechanism(), SaslMechanism::Plain);
        let mut s = c.session().unwrap();
        assert_eq!(sent(s.step(None)), b"\0alice\0alice-secret");
        assert!(s.credential_expires_at().is_none());
        assert!(matches!(s.step(Some(b"")), Ok(SaslStep::Done)));
        assert!(matches!(s.step(Some(b"")), Err(Error::Authentication(_))));
    }

    #[test]
    fn plain_rejects_nul_characters() {
        config_err(SaslCredentials::from_jaas(
            SaslMechanism::Plain,
            &jaas(PLAIN_MODULE, r#"username="a\0b" password="p""#),
        ));
    }

    #[test]
    fn scram_credentials_from_jaas() {
        for m in [SaslMechanism::ScramSha256, SaslMechanism::ScramSha512] {
            let c = SaslCredentials::from_jaas(
                m,
                &jaas(SCRAM_MODULE, "username=\"bob\"\n password=\"pw\""),
            )
            .unwrap();
            assert_eq!(c.mechanism(), m);
            let first = String::from_utf8(sent(c.session().unwrap().step(None))).unwrap();
            assert!(first.starts_with("n,,n=bob,r="), "{first}");
            // Each session has its own nonce.
            let again = String::from_utf8(sent(c.session().unwrap().step(None))).unwrap();
            assert_ne!(first, again);
        }
    }

    #[test]
    fn oauthbearer_credentials_from_jaas_use_unsecured_tokens() {
        let c = SaslCredentials::from_jaas(
            SaslMechanism::OAuthBearer,
            &jaas(
                OAUTHBEARER_MODULE,
                r#"unsecuredLoginStringClaim_sub="alice""#,
            ),
        )
        .unwrap();
        assert_eq!(c.mechanism(), SaslMechanism::OAuthBearer);
        let mut s = c.session().unwrap();
        assert!(s.credential_expires_at().is_some());
        let first = sent(s.step(None));
        assert!(first.starts_with(b"n,,\x01auth=Bearer eyJhbGciOiJub25lIn0."));
    }

    #[test]
    fn missing_options_are_named() {
        let msg = config_err(SaslCredentials::from_jaas(
            SaslMechanism::Plain,
            &jaas(PLAIN_MODULE, "username=\"alice\""),
        ));
        assert!(msg.contains("missing the option password"), "{msg}");
        let msg = config_err(SaslCredentials::from_jaas(
            SaslMechanism::ScramSha256,
            &jaas(SCRAM_MODULE, "password=\"pw\""),
        ));
        assert!(msg.contains("missing the option username"), "{msg}");
        let msg = config_err(SaslCredentials::from_jaas(
            SaslMechanism::OAuthBearer,
            &jaas(OAUTHBEARER_MODULE, ""),
        ));
        assert!(msg.contains("unsecuredLoginStringClaim_sub"), "{msg}");
    }

    #[test]
    fn module_must_fit_the_mechanism() {
        let cases = [
            (SaslMechanism::Plain, SCRAM_MODULE),
            (SaslMechanism::ScramSha256, PLAIN_MODULE),
            (SaslMechanism::ScramSha512, OAUTHBEARER_MODULE),
            (SaslMechanism::OAuthBearer, PLAIN_MODULE),
            (SaslMechanism::Plain, "com.example.CustomLoginModule"),
        ];
        for (mechanism, module) in cases {
            let msg = config_err(SaslCredentials::from_jaas(
                mechanism,
                &jaas(module, r#"username="u" password="p""#),
            ));
            assert!(msg.contains("does not fit"), "{msg}");
            assert!(msg.contains(mechanism.login_module()), "{msg}");
        }
        let msg = config_err(SaslCredentials::from_jaas(
            SaslMechanism::Plain,
            &jaas(KERBEROS_MODULE, r#"useKeyTab=true keyTab="/k.keytab""#),
        ));
        assert!(msg.contains("GSSAPI/Kerberos is not supported"), "{msg}");
    }

    #[test]
    fn debug_shows_mechanism_and_username_only() {
        let plain = SaslCredentials::from_jaas(
            SaslMechanism::Plain,
            &jaas(
                PLAIN_MODULE,
                &format!("username=\"alice\" password=\"{SECRET}\""),
            ),
        )
        .unwrap();
        let scram = SaslCredentials::from_jaas(
            SaslMechanism::ScramSha512,
            &jaas(
                SCRAM_MODULE,
                &format!("username=\"alice\" password=\"{SECRET}\""),
            ),
        )
        .unwrap();
        let oauth = SaslCredentials::from_jaas(
            SaslMechanism::OAuthBearer,
            &jaas(
                OAUTHBEARER_MODULE,
                &format!("unsecuredLoginStringClaim_sub=\"alice\" unsecuredLoginExtension_x=\"{SECRET}\""),
            ),
        )
        .unwrap();
        for c in [&plain, &scram, &oauth] {
            let debug = format!("{c:?} {c:#?}");
            assert!(!debug.contains(SECRET), "{debug}");
            assert!(debug.contains(c.mechanism().name()), "{debug}");
        }
        assert!(format!("{plain:?}").contains("alice"));
    }

    #[test]
    fn errors_never_show_the_secret() {
        let texts = [
            jaas(PLAIN_MODULE, &format!("password=\"{SECRET}\"")),
            jaas(SCRAM_MODULE, &format!("password=\"{SECRET}\"")),
            jaas(PLAIN_MODULE, &format!("username=\"{SECRET}\"")),
            jaas(KERBEROS_MODULE, &format!("password=\"{SECRET}\"")),
            jaas(
                SCRAM_MODULE,
                &format!("username=\"u\" password=\"{SECRET}\""),
            ),
            jaas(
                OAUTHBEARER_MODULE,
                &format!("unsecuredLoginExtension_x=\"{SECRET}\""),
            ),
            format!("{PLAIN_MODULE} required password=\"{SECRET}\""),
            format!("{PLAIN_MODULE} password=\"{SECRET}\";"),
        ];
        for mechanism in SUPPORTED {
            for text in &texts {
                if let Err(e) = SaslCredentials::from_jaas(mechanism, text) {
                    assert!(!e.to_string().contains(SECRET), "{e}");
                    assert!(!format!("{e:?}").contains(SECRET), "{e:?}");
                }
            }
        }
    }
}
