//! SASL/OAUTHBEARER (RFC 7628, KIP-255): bearer tokens, the providers that supply them,
//! Kafka's unsecured development tokens, and the client side of the exchange.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::error::Error;
use crate::security::sasl::{SaslSession, SaslStep};
use crate::security::Secret;

/// A token for SASL/OAUTHBEARER and when it expires. Debug redacts the value.
#[derive(Clone)]
pub struct OAuthBearerToken {
    value: Secret,
    expires_at: SystemTime,
    principal: Option<String>,
    extensions: Vec<(String, String)>,
}

impl OAuthBearerToken {
    /// A token valid for `lifetime` from now. The value must be an RFC 6750 bearer token
    /// (letters, digits, `-._~+/`, then optional `=` padding), as a JWT is.
    pub fn new(value: impl Into<Secret>, lifetime: Duration) -> Self {
        let now = SystemTime::now();
        // A lifetime past what SystemTime can hold means "does not expire" in practice.
        let expires_at = now
            .checked_add(lifetime)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
        OAuthBearerToken {
            value: value.into(),
            expires_at,
            principal: None,
            extensions: Vec::new(),
        }
    }

    /// Adds a SASL extension (KIP-342) sent with the token, e.g. a cluster or pool id the
    /// broker asks for. Keys must be letters only (`[A-Za-z]+`) and not `auth`; values
    /// printable ASCII, space, tab, CR or LF (RFC 7628). Authentication fails with
    /// [`Error::Config`] otherwise.
    pub fn with_extension(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extensions.push((key.into(), value.into()));
        self
    }

    /// Records the principal the token stands for, for logs; it is not sent.
    pub fn with_principal(mut self, name: impl Into<String>) -> Self {
        self.principal = Some(name.into());
        self
    }

    /// The token itself.
    pub fn value(&self) -> &Secret {
        &self.value
    }

    /// When the token expires; connections re-authenticate before then.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// The principal set with [`with_principal`](Self::with_principal), if any.
    pub fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    /// The SASL extensions, in the order added.
    pub fn extensions(&self) -> &[(String, String)] {
        &self.extensions
    }
}

impl fmt::Debug for OAuthBearerToken {
    /// The expiry, principal and extension keys; the token and extension values are left
    /// out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.extensions.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("OAuthBearerToken")
            .field("value", &self.value)
            .field("expires_at", &self.expires_at)
            .field("principal", &self.principal)
            .field("extension_keys", &keys)
            .finish()
    }
}

/// Supplies tokens (the user's identity provider). Called once per authentication and
/// re-authentication, on a connection thread.
///
/// `token` should return promptly, from a cache that something else refreshes (as Java's
/// login refresh thread does): while it runs, the connection waits. At setup that counts
/// against socket.connection.setup.timeout.ms only once it returns; during a
/// re-authentication the connection's queued requests wait behind it. A panic fails that
/// authentication (the connection is retried), never the producer.
pub trait OAuthBearerTokenProvider: Send + Sync + 'static {
    /// A token valid now. An error fails this authentication attempt with that error.
    fn token(&self) -> Result<OAuthBearerToken, Error>;
}

/// Option names of `OAuthBearerLoginModule` for unsecured tokens.
const STRING_CLAIM: &str = "unsecuredLoginStringClaim_";
const NUMBER_CLAIM: &str = "unsecuredLoginNumberClaim_";
const LIST_CLAIM: &str = "unsecuredLoginListClaim_";
const EXTENSION: &str = "unsecuredLoginExtension_";
const PRINCIPAL_CLAIM_NAME: &str = "unsecuredLoginPrincipalClaimName";
const SCOPE_CLAIM_NAME: &str = "unsecuredLoginScopeClaimName";
const LIFETIME_SECONDS: &str = "unsecuredLoginLifetimeSeconds";

/// Claims the provider writes itself from the clock and the lifetime.
const TIME_CLAIMS: [&str; 2] = ["iat", "exp"];

/// A claim value of an unsecured token.
#[derive(Clone)]
enum Claim {
    /// A JSON string.
    Text(String),
    /// A JSON number, kept as written (already checked to be valid JSON).
    Number(String),
    /// A JSON array of strings.
    List(Vec<String>),
}

/// Kafka's unsecured tokens (alg "none", for tests and development): built from
/// `OAuthBearerLoginModule`'s `unsecuredLoginStringClaim_<name>`,
/// `unsecuredLoginNumberClaim_<name>`, `unsecuredLoginListClaim_<name>` (first char is the
/// separator, as Java), `unsecuredLoginExtension_<key>`, `unsecuredLoginPrincipalClaimName`
/// (default `sub`), `unsecuredLoginScopeClaimName` (default `scope`) and
/// `unsecuredLoginLifetimeSeconds` (default 3600) options.
///
/// The token is `base64url({"alg":"none"}) "." base64url(claims) "."`: no signature, so
/// only brokers configured for unsecured tokens accept it. Never use it in production.
#[derive(Clone)]
pub struct UnsecuredTokenProvider {
    principal_claim: String,
    principal: String,
    /// Claims other than the principal, iat and exp, in the order configured.
    claims: Vec<(String, Claim)>,
    extensions: Vec<(String, String)>,
    lifetime: Duration,
}

impl UnsecuredTokenProvider {
    /// Tokens for `principal` in the `sub` claim, valid for an hour.
    pub fn new(principal: impl Into<String>) -> Self {
        UnsecuredTokenProvider {
            principal_claim: "sub".into(),
            principal: principal.into(),
            claims: Vec::new(),
            extensions: Vec::new(),
            lifetime: Duration::from_secs(3600),
        }
    }

    /// How long each token is valid, in whole seconds (`exp` = `iat` + lifetime).
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// From the options of an `OAuthBearerLoginModule` entry in `sasl.jaas.config`.
    /// Options not about unsecured tokens are ignored, as JAAS modules ignore options they
    /// do not know. Errors name the option, never its value.
    pub(crate) fn from_jaas_options(options: &[(String, Secret)]) -> Result<Self, Error> {
        let mut principal_claim = "sub".to_string();
        let mut lifetime = Duration::from_secs(3600);
        let mut claims: Vec<(String, Claim)> = Vec::new();
        let mut extensions: Vec<(String, String)> = Vec::new();
        for (key, value) in options {
            let value = value.expose();
            if key == PRINCIPAL_CLAIM_NAME {
                principal_claim = claim_name(key, value)?;
            } else if key == SCOPE_CLAIM_NAME {
                // The scope is whatever claim of this name is configured; the name itself
                // only needs to be usable.
                claim_name(key, value)?;
            } else if key == LIFETIME_SECONDS {
                lifetime = parse_lifetime(value)?;
            } else if let Some(name) = key.strip_prefix(STRING_CLAIM) {
                set(
                    &mut claims,
                    claim_name(key, name)?,
                    Claim::Text(value.into()),
                );
            } else if let Some(name) = key.strip_prefix(NUMBER_CLAIM) {
                set(
                    &mut claims,
                    claim_name(key, name)?,
                    number_claim(key, value)?,
                );
            } else if let Some(name) = key.strip_prefix(LIST_CLAIM) {
                set(&mut claims, claim_name(key, name)?, list_claim(value));
            } else if let Some(ext) = key.strip_prefix(EXTENSION) {
                check_extension(ext, value)?;
                set(&mut extensions, ext.to_string(), value.to_string());
            }
        }
        let principal = take_principal(&mut claims, &principal_claim)?;
        Ok(UnsecuredTokenProvider {
            principal_claim,
            principal,
            claims,
            extensions,
            lifetime,
        })
    }

    /// The claims JSON for a token issued at `iat` (seconds since the epoch).
    fn claims_json(&self, iat: u64, exp: u64) -> String {
        let mut json = format!("{{\"iat\":{iat},\"exp\":{exp},");
        push_json_string(&mut json, &self.principal_claim);
        json.push(':');
        push_json_string(&mut json, &self.principal);
        for (name, claim) in &self.claims {
            json.push(',');
            push_json_string(&mut json, name);
            json.push(':');
            push_claim(&mut json, claim);
        }
        json.push('}');
        json
    }
}

impl fmt::Debug for UnsecuredTokenProvider {
    /// The principal, claim names, extension keys and lifetime; no claim or extension
    /// values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let claims: Vec<&str> = self.claims.iter().map(|(k, _)| k.as_str()).collect();
        let extensions: Vec<&str> = self.extensions.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("UnsecuredTokenProvider")
            .field("principal_claim", &self.principal_claim)
            .field("principal", &self.principal)
            .field("other_claims", &claims)
            .field("extension_keys", &extensions)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl OAuthBearerTokenProvider for UnsecuredTokenProvider {
    fn token(&self) -> Result<OAuthBearerToken, Error> {
        // Whole seconds, so that `expires_at` is exactly the `exp` claim.
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let exp = iat.saturating_add(self.lifetime.as_secs());
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let claims = URL_SAFE_NO_PAD.encode(self.claims_json(iat, exp));
        Ok(OAuthBearerToken {
            value: Secret::new(format!("{header}.{claims}.")),
            expires_at: UNIX_EPOCH + Duration::from_secs(exp),
            principal: Some(self.principal.clone()),
            extensions: self.extensions.clone(),
        })
    }
}

/// Inserts or replaces `key`: a later option wins, as in Java's option map.
fn set<T>(entries: &mut Vec<(String, T)>, key: String, value: T) {
    entries.retain(|(k, _)| *k != key);
    entries.push((key, value));
}

/// A claim name from an option (its suffix or its value): non-empty and not one the
/// provider sets itself.
fn claim_name(option: &str, name: &str) -> Result<String, Error> {
    if name.is_empty() {
        return Err(Error::Config(format!(
            "sasl.jaas.config option {option} needs a claim name"
        )));
    }
    if TIME_CLAIMS.contains(&name) {
        return Err(Error::Config(format!(
            "sasl.jaas.config option {option} names claim {name}, which the unsecured token \
             sets from the clock and {LIFETIME_SECONDS}"
        )));
    }
    Ok(name.to_string())
}

/// The principal: the string claim named by the principal claim name, required.
fn take_principal(claims: &mut Vec<(String, Claim)>, name: &str) -> Result<String, Error> {
    let position = claims
        .iter()
        .position(|(k, c)| k == name && matches!(c, Claim::Text(_)));
    match position.map(|i| claims.remove(i)) {
        Some((_, Claim::Text(principal))) => Ok(principal),
        _ => Err(Error::Config(format!(
            "sasl.jaas.config for OAuthBearerLoginModule is missing the option \
             {STRING_CLAIM}{name} (the principal of Kafka's unsecured development tokens; \
             for real tokens supply an OAuthBearerTokenProvider)"
        ))),
    }
}

fn parse_lifetime(value: &str) -> Result<Duration, Error> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|&secs| secs > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| {
            Error::Config(format!(
                "sasl.jaas.config option {LIFETIME_SECONDS} is not a positive whole number \
                 of seconds"
            ))
        })
}

fn number_claim(option: &str, value: &str) -> Result<Claim, Error> {
    let value = value.trim();
    if is_json_number(value) {
        Ok(Claim::Number(value.to_string()))
    } else {
        Err(Error::Config(format!(
            "sasl.jaas.config option {option} is not a number"
        )))
    }
}

/// A list claim: the first character separates the items, which follow it; empty items
/// are dropped.
fn list_claim(value: &str) -> Claim {
    let mut chars = value.chars();
    let items = match chars.next() {
        Some(separator) => chars
            .as_str()
            .split(separator)
            .filter(|item| !item.is_empty())
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    Claim::List(items)
}

/// Whether `text` is a JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_json_number(text: &str) -> bool {
    fn digits(s: &[u8]) -> usize {
        s.iter().take_while(|b| b.is_ascii_digit()).count()
    }
    let mut s = text.as_bytes();
    if let Some(rest) = s.strip_prefix(b"-") {
        s = rest;
    }
    let int = digits(s);
    if int == 0 || (int > 1 && s[0] == b'0') {
        return false;
    }
    s = &s[int..];
    if let Some(rest) = s.strip_prefix(b".") {
        let frac = digits(rest);
        if frac == 0 {
            return false;
        }
        s = &rest[frac..];
    }
    if let Some(rest) = s.strip_prefix(b"e").or_else(|| s.strip_prefix(b"E")) {
        let rest = rest
            .strip_prefix(b"+")
            .or_else(|| rest.strip_prefix(b"-"))
            .unwrap_or(rest);
        let exp = digits(rest);
        if exp == 0 {
            return false;
        }
        s = &rest[exp..];
    }
    s.is_empty()
}

fn push_claim(json: &mut String, claim: &Claim) {
    match claim {
        Claim::Text(text) => push_json_string(json, text),
        Claim::Number(number) => json.push_str(number),
        Claim::List(items) => {
            json.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    json.push(',');
                }
                push_json_string(json, item);
            }
            json.push(']');
        }
    }
}

/// Appends `text` as a JSON string: quotes, backslashes and control characters escaped,
/// everything else as UTF-8.
fn push_json_string(json: &mut String, text: &str) {
    json.push('"');
    for c in text.chars() {
        match c {
            '"' => json.push_str("\\\""),
            '\\' => json.push_str("\\\\"),
            '\n' => json.push_str("\\n"),
            '\r' => json.push_str("\\r"),
            '\t' => json.push_str("\\t"),
            '\u{8}' => json.push_str("\\b"),
            '\u{c}' => json.push_str("\\f"),
            c if c < ' ' => json.push_str(&format!("\\u{:04x}", c as u32)),
            c => json.push(c),
        }
    }
    json.push('"');
}

/// Checks an extension (RFC 7628 section 3.1, KIP-342): the key letters only and not the
/// reserved `auth`, the value printable ASCII, space, tab, CR or LF. Values are never
/// quoted in the error.
fn check_extension(key: &str, value: &str) -> Result<(), Error> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(Error::Config(
            "an OAUTHBEARER extension key must be letters only ([A-Za-z]+)".into(),
        ));
    }
    if key == "auth" {
        return Err(Error::Config(
            "the OAUTHBEARER extension key auth is reserved for the token".into(),
        ));
    }
    let allowed = |b: u8| (0x21..=0x7e).contains(&b) || matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    if !value.bytes().all(allowed) {
        return Err(Error::Config(format!(
            "the value of OAUTHBEARER extension {key} has characters RFC 7628 does not allow"
        )));
    }
    Ok(())
}

/// Whether `value` is an RFC 6750 `b64token`: `[A-Za-z0-9-._~+/]+ =*`.
fn is_bearer_token(value: &str) -> bool {
    let body = value.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// The SASL separator of RFC 7628 messages.
const SEPARATOR: u8 = 0x01;

/// Where an OAUTHBEARER exchange stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    TokenSent,
    /// The broker refused the token and we acknowledged; it will fail the exchange.
    ErrorAcknowledged,
    Finished,
}

/// One OAUTHBEARER authentication with one token.
pub(crate) struct OAuthBearerSession {
    /// The client's initial response.
    message: Vec<u8>,
    expires_at: SystemTime,
    /// The broker's JSON error status, when it refused the token.
    server_error: Option<String>,
    state: State,
}

impl OAuthBearerSession {
    /// Checks the token and its extensions and builds the client's initial response.
    pub(crate) fn new(token: OAuthBearerToken) -> Result<Self, Error> {
        if !is_bearer_token(token.value.expose()) {
            return Err(Error::Authentication(
                "the OAUTHBEARER token is not a valid bearer token (RFC 6750 b64token: \
                 letters, digits, -._~+/ and trailing =)"
                    .into(),
            ));
        }
        for (key, value) in &token.extensions {
            check_extension(key, value)?;
        }
        Ok(OAuthBearerSession {
            message: initial_response(&token),
            expires_at: token.expires_at,
            server_error: None,
            state: State::Start,
        })
    }
}

/// `n,,` `\x01auth=Bearer <token>` (`\x01key=value`)* `\x01\x01` (RFC 7628 section 3.1,
/// with no authorization id).
fn initial_response(token: &OAuthBearerToken) -> Vec<u8> {
    let mut message = b"n,,".to_vec();
    message.push(SEPARATOR);
    message.extend_from_slice(b"auth=Bearer ");
    message.extend_from_slice(token.value.expose().as_bytes());
    for (key, value) in &token.extensions {
        message.push(SEPARATOR);
        message.extend_from_slice(key.as_bytes());
        message.push(b'=');
        message.extend_from_slice(value.as_bytes());
    }
    message.extend_from_slice(&[SEPARATOR, SEPARATOR]);
    message
}

/// The longest broker error text kept, so a misbehaving broker cannot fill logs.
const MAX_SERVER_ERROR: usize = 1024;

impl SaslSession for OAuthBearerSession {
    fn step(&mut self, challenge: Option<&[u8]>) -> Result<SaslStep, Error> {
        let state = std::mem::replace(&mut self.state, State::Finished);
        match (state, challenge) {
            (State::Start, None) => {
                self.state = State::TokenSent;
                Ok(SaslStep::Send(self.message.clone()))
            }
            (State::TokenSent, Some([])) => Ok(SaslStep::Done),
            (State::TokenSent, Some(error)) => {
                // The broker refused the token and sent its JSON status; RFC 7628 section
                // 3.2.3 has the client answer with a lone separator, after which the broker
                // fails the exchange. Keep the status to explain that failure.
                let mut text = String::from_utf8_lossy(error).into_owned();
                if text.len() > MAX_SERVER_ERROR {
                    let mut end = MAX_SERVER_ERROR;
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    text.truncate(end);
                }
                self.server_error = Some(text);
                self.state = State::ErrorAcknowledged;
                Ok(SaslStep::Send(vec![SEPARATOR]))
            }
            (State::ErrorAcknowledged, Some(_)) => Err(Error::Authentication(format!(
                "the broker refused the OAUTHBEARER token: {}",
                self.server_error.as_deref().unwrap_or("no reason given")
            ))),
            _ => Err(Error::Authentication(
                "OAUTHBEARER exchange driven out of order".into(),
            )),
        }
    }

    fn credential_expires_at(&self) -> Option<SystemTime> {
        Some(self.expires_at)
    }

    fn server_error(&self) -> Option<&str> {
        self.server_error.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-xyz";

    fn options(pairs: &[(&str, &str)]) -> Vec<(String, Secret)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Secret::new(*v)))
            .collect()
    }

    fn config_err<T>(result: Result<T, Error>) -> String {
        match result {
            Err(Error::Config(msg)) => msg,
            Err(e) => panic!("expected a config error, got {e}"),
            Ok(_) => panic!("expected a config error, got success"),
        }
    }

    fn sent(step: Result<SaslStep, Error>) -> Vec<u8> {
        match step {
            Ok(SaslStep::Send(bytes)) => bytes,
            other => panic!("expected bytes to send, got {other:?}"),
        }
    }

    /// The header and claims JSON of an unsecured token.
    fn decode(token: &OAuthBearerToken) -> (String, String) {
        let parts: Vec<&str> = token.value().expose().split('.').collect();
        assert_eq!(parts.len(), 3, "header.claims.signature");
        assert_eq!(parts[2], "", "unsecured tokens have no signature");
        let text = |part: &str| String::from_utf8(URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
        (text(parts[0]), text(parts[1]))
    }

    /// The number after `"name":` in a flat JSON object.
    fn number(json: &str, name: &str) -> u64 {
        let key = format!("\"{name}\":");
        let start = json.find(&key).unwrap() + key.len();
        let digits: String = json[start..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse().unwrap()
    }

    #[test]
    fn initial_response_bytes_are_exact() {
        let token = OAuthBearerToken::new("abc.def-_~+/.sig==", Duration::from_secs(60))
            .with_extension("traceId", "123")
            .with_extension("logicalCluster", "lkc-1 a");
        let mut s = OAuthBearerSession::new(token).unwrap();
        assert_eq!(
            sent(s.step(None)),
            b"n,,\x01auth=Bearer abc.def-_~+/.sig==\x01traceId=123\x01logicalCluster=lkc-1 a\x01\x01"
        );
        assert!(matches!(s.step(Some(b"")), Ok(SaslStep::Done)));
        assert!(s.server_error().is_none());

        let plain = OAuthBearerToken::new("t0k", Duration::from_secs(60));
        let mut s = OAuthBearerSession::new(plain).unwrap();
        assert_eq!(sent(s.step(None)), b"n,,\x01auth=Bearer t0k\x01\x01");
    }

    #[test]
    fn refused_token_is_acknowledged_and_reported() {
        let status = br#"{"status":"invalid_token"}"#;
        let mut s =
            OAuthBearerSession::new(OAuthBearerToken::new("t", Duration::from_secs(1))).unwrap();
        sent(s.step(None));
        assert_eq!(sent(s.step(Some(status))), [0x01]);
        assert_eq!(s.server_error(), Some(r#"{"status":"invalid_token"}"#));
        match s.step(Some(b"")) {
            Err(Error::Authentication(msg)) => assert!(msg.contains("invalid_token"), "{msg}"),
            other => panic!("expected an authentication error, got {other:?}"),
        }
    }

    #[test]
    fn session_reports_token_expiry() {
        let token = OAuthBearerToken::new("t", Duration::from_secs(300));
        let expires = token.expires_at();
        let s = OAuthBearerSession::new(token).unwrap();
        assert_eq!(s.credential_expires_at(), Some(expires));
        let left = expires.duration_since(SystemTime::now()).unwrap();
        assert!(left <= Duration::from_secs(300) && left > Duration::from_secs(290));
    }

    #[test]
    fn rejects_bad_extensions_and_tokens() {
        for key in ["auth", "", "trace_id", "x1", "ünï"] {
            let token = OAuthBearerToken::new("t", Duration::from_secs(1)).with_extension(key, "v");
            config_err(OAuthBearerSession::new(token));
        }
        let token = OAuthBearerToken::new("t", Duration::from_secs(1))
            .with_extension("k", format!("{SECRET}\u{1}"));
        let msg = config_err(OAuthBearerSession::new(token));
        assert!(!msg.contains(SECRET), "{msg}");
        for value in ["", "has space", "a\u{1}b", "==", "a=b"] {
            let token = OAuthBearerToken::new(value, Duration::from_secs(1));
            assert!(matches!(
                OAuthBearerSession::new(token),
                Err(Error::Authentication(_))
            ));
        }
    }

    #[test]
    fn unsecured_token_decodes_to_header_and_claims() {
        let provider = UnsecuredTokenProvider::from_jaas_options(&options(&[
            ("unsecuredLoginStringClaim_sub", "alice"),
            ("unsecuredLoginStringClaim_note", "say \"hi\"\\\n\u{1}é"),
            ("unsecuredLoginNumberClaim_level", "-1.5e3"),
            ("unsecuredLoginListClaim_scope", "|read||write|"),
            ("unsecuredLoginListClaim_empty", ""),
            ("unsecuredLoginExtension_traceId", "42"),
            ("unsecuredLoginLifetimeSeconds", "120"),
            ("unrelatedOption", "ignored"),
        ]))
        .unwrap();
        let token = provider.token().unwrap();
        let (header, claims) = decode(&token);
        assert_eq!(header, r#"{"alg":"none"}"#);
        let iat = number(&claims, "iat");
        let exp = number(&claims, "exp");
        assert_eq!(exp, iat + 120);
        assert_eq!(
            claims,
            format!(
                "{{\"iat\":{iat},\"exp\":{exp},\"sub\":\"alice\",\
                 \"note\":\"say \\\"hi\\\"\\\\\\n\\u0001é\",\"level\":-1.5e3,\
                 \"scope\":[\"read\",\"write\"],\"empty\":[]}}"
            )
        );
        assert_eq!(token.expires_at(), UNIX_EPOCH + Duration::from_secs(exp));
        assert_eq!(token.principal(), Some("alice"));
        assert_eq!(token.extensions(), [("traceId".into(), "42".into())]);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(iat <= now && iat + 5 >= now);
    }

    #[test]
    fn unsecured_defaults_and_principal_claim_name() {
        let token = UnsecuredTokenProvider::new("bob").token().unwrap();
        let (_, claims) = decode(&token);
        assert_eq!(number(&claims, "exp"), number(&claims, "iat") + 3600);
        assert!(claims.ends_with(",\"sub\":\"bob\"}"), "{claims}");

        let provider = UnsecuredTokenProvider::from_jaas_options(&options(&[
            ("unsecuredLoginPrincipalClaimName", "user"),
            ("unsecuredLoginStringClaim_user", "carol"),
        ]))
        .unwrap();
        let (_, claims) = decode(&provider.token().unwrap());
        assert!(claims.ends_with(",\"user\":\"carol\"}"), "{claims}");

        let short = UnsecuredTokenProvider::new("d").with_lifetime(Duration::from_secs(5));
        let (_, claims) = decode(&short.token().unwrap());
        assert_eq!(number(&claims, "exp"), number(&claims, "iat") + 5);
    }

    #[test]
    fn unsecured_option_errors_name_the_option() {
        let msg = config_err(UnsecuredTokenProvider::from_jaas_options(&options(&[])));
        assert!(msg.contains("unsecuredLoginStringClaim_sub"), "{msg}");
        let msg = config_err(UnsecuredTokenProvider::from_jaas_options(&options(&[
            ("unsecuredLoginPrincipalClaimName", "user"),
            ("unsecuredLoginStringClaim_sub", "alice"),
        ])));
        assert!(msg.contains("unsecuredLoginStringClaim_user"), "{msg}");
        let cases = [
            (
                "unsecuredLoginNumberClaim_n",
                SECRET,
                "unsecuredLoginNumberClaim_n",
            ),
            (
                "unsecuredLoginNumberClaim_n",
                "01",
                "unsecuredLoginNumberClaim_n",
            ),
            (
                "unsecuredLoginLifetimeSeconds",
                SECRET,
                "unsecuredLoginLifetimeSeconds",
            ),
            (
                "unsecuredLoginLifetimeSeconds",
                "0",
                "unsecuredLoginLifetimeSeconds",
            ),
            (
                "unsecuredLoginStringClaim_exp",
                SECRET,
                "unsecuredLoginStringClaim_exp",
            ),
            (
                "unsecuredLoginStringClaim_",
                SECRET,
                "unsecuredLoginStringClaim_",
            ),
            ("unsecuredLoginExtension_auth", SECRET, "auth"),
            ("unsecuredLoginExtension_bad_key", SECRET, "letters only"),
            ("unsecuredLoginExtension_ok", "\u{0}s3cr3t-xyz", "ok"),
        ];
        for (key, value, named) in cases {
            let msg = config_err(UnsecuredTokenProvider::from_jaas_options(&options(&[
                ("unsecuredLoginStringClaim_sub", "alice"),
                (key, value),
            ])));
            assert!(msg.contains(named), "{msg}");
            assert!(!msg.contains(SECRET), "{msg}");
        }
    }

    #[test]
    fn json_numbers() {
        for good in ["0", "-0", "12", "1.5", "-3.25e10", "1E+2", "2e-3"] {
            assert!(is_json_number(good), "{good}");
        }
        for bad in ["", "-", "01", "1.", ".5", "1e", "+1", "1x", "NaN", "0x10"] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }

    #[test]
    fn debug_redacts_token_and_extension_values() {
        let token = OAuthBearerToken::new(SECRET, Duration::from_secs(1))
            .with_extension("k", SECRET)
            .with_principal("alice");
        let debug = format!("{token:?} {token:#?}");
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(
            debug.contains("alice") && debug.contains("\"k\""),
            "{debug}"
        );

        let provider = UnsecuredTokenProvider::from_jaas_options(&options(&[
            ("unsecuredLoginStringClaim_sub", "alice"),
            ("unsecuredLoginStringClaim_other", SECRET),
            ("unsecuredLoginExtension_k", SECRET),
        ]))
        .unwrap();
        let debug = format!("{provider:?}");
        assert!(!debug.contains(SECRET), "{debug}");
        let token = provider.token().unwrap();
        assert!(!format!("{token:?}").contains(SECRET));
    }
}
