//! The SASL exchange of a connection (KIP-152): SaslHandshake names the mechanism, then
//! SaslAuthenticate requests carry the mechanism's messages until it is done. The broker may
//! grant a session lifetime (KIP-368), after which the connection must authenticate again.
//!
//! The same exchange runs at setup, on the connecting thread over the bare stream, and for
//! re-authentication, on the writer thread with the reader thread routing the answers
//! ([`SaslChannel`] hides which).

use std::time::{Duration, SystemTime};

use crate::error::{Error, ErrorCode};
use crate::protocol::api_versions::ApiVersionsResponse;
use crate::protocol::sasl_authenticate::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use crate::protocol::sasl_handshake::{SaslHandshakeRequest, SaslHandshakeResponse};
use crate::protocol::Request;
use crate::security::{SaslCredentials, SaslStep};

/// Sends one SASL request and waits for its answer.
pub(crate) trait SaslChannel {
    /// A SaslHandshake round trip at `version`.
    fn handshake(
        &mut self,
        request: &SaslHandshakeRequest,
        version: i16,
    ) -> Result<SaslHandshakeResponse, Error>;

    /// A SaslAuthenticate round trip at `version`.
    fn authenticate(
        &mut self,
        request: &SaslAuthenticateRequest,
        version: i16,
    ) -> Result<SaslAuthenticateResponse, Error>;
}

/// The SaslHandshake and SaslAuthenticate versions both sides speak.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SaslVersions {
    pub(crate) handshake: i16,
    pub(crate) authenticate: i16,
}

impl SaslVersions {
    /// The highest common versions. SaslHandshake v1 is the least this client speaks: v0
    /// sent the mechanism's messages as raw frames, before SaslAuthenticate existed
    /// (Kafka before 1.0).
    pub(crate) fn negotiate(broker: &str, theirs: &ApiVersionsResponse) -> Result<Self, Error> {
        let common = |key, ours: crate::protocol::VersionRange| {
            theirs.range(key).and_then(|r| ours.highest_common(&r))
        };
        let handshake = common(
            SaslHandshakeRequest::API_KEY,
            SaslHandshakeRequest::VERSIONS,
        )
        .filter(|v| *v >= 1);
        let authenticate = common(
            SaslAuthenticateRequest::API_KEY,
            SaslAuthenticateRequest::VERSIONS,
        );
        match (handshake, authenticate) {
            (Some(handshake), Some(authenticate)) => Ok(SaslVersions {
                handshake,
                authenticate,
            }),
            _ => Err(Error::Authentication(format!(
                "{broker} does not offer SaslHandshake v1 and SaslAuthenticate (Kafka 1.0 or \
                 later), which SASL needs"
            ))),
        }
    }
}

/// Authenticates once with `credentials`. Returns the session lifetime the broker granted,
/// `None` when it set no limit.
pub(crate) fn authenticate(
    channel: &mut dyn SaslChannel,
    broker: &str,
    versions: SaslVersions,
    credentials: &SaslCredentials,
) -> Result<Option<Duration>, Error> {
    let mechanism = credentials.mechanism();
    let request = SaslHandshakeRequest {
        mechanism: mechanism.name().to_owned(),
    };
    let response = channel.handshake(&request, versions.handshake)?;
    match ErrorCode::from_code(response.error_code) {
        ErrorCode::None => {}
        ErrorCode::UnsupportedSaslMechanism => {
            return Err(Error::Authentication(format!(
                "{broker} does not enable SASL mechanism {mechanism}; it enables: {}",
                response.mechanisms.join(", ")
            )))
        }
        code => {
            return Err(Error::Authentication(format!(
                "{broker} refused SaslHandshake for {mechanism}: {code}"
            )))
        }
    }
    // The session may call the user's token provider: a panic there fails this
    // authentication, not the connection thread (whose owner would wait for it forever).
    let session = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| credentials.session()));
    let mut session = session.map_err(|_| {
        Error::Authentication(format!(
            "{broker}: the {mechanism} credentials (the OAUTHBEARER token provider) panicked"
        ))
    })??;
    let mut challenge: Option<Vec<u8>> = None;
    let mut lifetime: Option<Duration> = None;
    loop {
        let bytes = match session.step(challenge.as_deref())? {
            SaslStep::Send(bytes) => bytes,
            // A session never outlives its credential (the broker caps it at a token's
            // expiry too; this keeps a client-side bound if it does not say so).
            SaslStep::Done => {
                let expires_in = session
                    .credential_expires_at()
                    .map(|at| at.duration_since(SystemTime::now()).unwrap_or_default());
                return Ok(match (lifetime, expires_in) {
                    (Some(l), Some(e)) => Some(l.min(e)),
                    (l, _) => l,
                });
            }
        };
        let request = SaslAuthenticateRequest { auth_bytes: bytes };
        let response = channel.authenticate(&request, versions.authenticate)?;
        if response.error_code != 0 {
            let code = ErrorCode::from_code(response.error_code);
            let message = response
                .error_message
                .as_deref()
                .filter(|m| !m.is_empty())
                .unwrap_or(code.name());
            let detail = session
                .server_error()
                .map(|e| format!(" (the broker's answer: {e})"))
                .unwrap_or_default();
            return Err(Error::Authentication(format!(
                "{broker}: {mechanism} authentication failed: {message}{detail}"
            )));
        }
        if response.session_lifetime_ms > 0 {
            lifetime = Some(Duration::from_millis(response.session_lifetime_ms as u64));
        }
        challenge = Some(response.auth_bytes);
    }
}

/// When to re-authenticate a session of `lifetime`: at a random point between 85 % and
/// 95 % of it, as Java's client does, so that the connections of many clients do not all
/// re-authenticate at once and a slow exchange still ends before the broker's deadline.
///
/// Never sooner than [`MIN_REAUTHENTICATION_DELAY`]: a token that is about to expire (or a
/// clock ahead of the broker's) must not make the connection re-authenticate in a loop.
pub(crate) fn reauthentication_delay(lifetime: Duration) -> Duration {
    let spread = f64::from(getrandom::u32().unwrap_or(0) % 1000) / 1000.0;
    lifetime
        .mul_f64(0.85 + 0.10 * spread)
        .max(MIN_REAUTHENTICATION_DELAY)
}

/// The shortest time between two authentications of one connection.
pub(crate) const MIN_REAUTHENTICATION_DELAY: Duration = Duration::from_secs(1);
