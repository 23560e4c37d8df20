//! The client side of SASL/SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677).
//!
//! Three messages: the client-first (name and a fresh nonce), the client-final (a proof
//! that we know the password, computed over everything exchanged so far) and the check
//! of the server-final signature, which proves the broker knows the password too. Only
//! after that check is the exchange done.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use crate::error::Error;
use crate::security::sasl::{SaslSession, SaslStep};
use crate::security::Secret;

/// Kafka's minimum iteration count for SCRAM credentials. A broker asking for fewer is
/// either misconfigured or an attacker making the proof cheap to brute-force.
const MIN_ITERATIONS: u32 = 4096;

/// The most iterations a client computes. Kafka stores credentials with at most 16384; a
/// count far above that can only come from a broken or hostile peer, which would otherwise
/// keep a connect thread hashing for minutes.
const MAX_ITERATIONS: u32 = 1_000_000;

/// Random bytes in a client nonce (32 characters once base64-encoded).
const NONCE_BYTES: usize = 24;

/// `base64("n,,")`: the GS2 header (no channel binding, no authorization id) echoed in the
/// client-final message.
const CHANNEL_BINDING: &str = "biws";

/// The hash function of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScramHash {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramHash {
    /// `Hi()`: PBKDF2 with HMAC over this hash, output as long as the hash.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec()
            }
            ScramHash::Sha512 => {
                pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec()
            }
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => hmac_with::<Hmac<Sha256>>(key, data)
                .finalize()
                .into_bytes()
                .to_vec(),
            ScramHash::Sha512 => hmac_with::<Hmac<Sha512>>(key, data)
                .finalize()
                .into_bytes()
                .to_vec(),
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// Whether `HMAC(key, data)` equals `expected`, compared in constant time so a forged
    /// server signature cannot be found byte by byte from timing.
    fn hmac_matches(self, key: &[u8], data: &[u8], expected: &[u8]) -> bool {
        match self {
            ScramHash::Sha256 => hmac_with::<Hmac<Sha256>>(key, data)
                .verify_slice(expected)
                .is_ok(),
            ScramHash::Sha512 => hmac_with::<Hmac<Sha512>>(key, data)
                .verify_slice(expected)
                .is_ok(),
        }
    }
}

/// A MAC (`Hmac<Sha256>` or `Hmac<Sha512>`) over `data`, not yet finalized.
fn hmac_with<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> M {
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac
}

/// Where the exchange stands.
enum State {
    /// Nothing sent yet.
    Start,
    /// The client-first message went out; `client_first_bare` is part of the signed text.
    ClientFirstSent { client_first_bare: String },
    /// The proof went out; what the server's signature must be computed from.
    ClientFinalSent {
        server_key: Vec<u8>,
        auth_message: String,
    },
    /// Done or failed: no further step is valid.
    Finished,
}

/// One SCRAM authentication.
pub(crate) struct ScramSession {
    hash: ScramHash,
    /// The SASLprepped and escaped user name as it goes on the wire.
    sasl_name: String,
    password: Secret,
    client_nonce: String,
    state: State,
}

impl ScramSession {
    /// A session with a fresh random nonce.
    pub(crate) fn new(hash: ScramHash, username: &str, password: Secret) -> Result<Self, Error> {
        Self::with_nonce(hash, username, password, &random_nonce()?)
    }

    /// A session with a given client nonce: [`new`](Self::new) passes a random one, tests
    /// a fixed one to replay known exchanges.
    pub(crate) fn with_nonce(
        hash: ScramHash,
        username: &str,
        password: Secret,
        client_nonce: &str,
    ) -> Result<Self, Error> {
        Ok(ScramSession {
            hash,
            sasl_name: sasl_name(username)?,
            password,
            client_nonce: client_nonce.to_string(),
            state: State::Start,
        })
    }

    /// `n,,n=<name>,r=<nonce>`.
    fn client_first(&mut self) -> Vec<u8> {
        let client_first_bare = format!("n={},r={}", self.sasl_name, self.client_nonce);
        let message = format!("n,,{client_first_bare}");
        self.state = State::ClientFirstSent { client_first_bare };
        message.into_bytes()
    }

    /// Checks the server-first message and answers with the proof.
    fn client_final(
        &mut self,
        client_first_bare: &str,
        server_first: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let server_first = utf8(server_first, "server-first")?;
        let first = ServerFirst::parse(server_first, &self.client_nonce)?;

        let without_proof = format!("c={CHANNEL_BINDING},r={}", first.nonce);
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");

        // Kafka's broker and Java client derive the stored credential from the password's
        // raw UTF-8 bytes, without SASLprep, so the password must be used as is to match.
        let salted = self.hash.salted_password(
            self.password.expose().as_bytes(),
            &first.salt,
            first.iterations,
        );
        let client_key = self.hash.hmac(&salted, b"Client Key");
        let stored_key = self.hash.hash(&client_key);
        let client_signature = self.hash.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = self.hash.hmac(&salted, b"Server Key");

        self.state = State::ClientFinalSent {
            server_key,
            auth_message,
        };
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the broker's signature, or its error.
    fn verify_server_final(
        &self,
        server_key: &[u8],
        auth_message: &str,
        server_final: &[u8],
    ) -> Result<(), Error> {
        let server_final = utf8(server_final, "server-final")?;
        let attributes = attributes(server_final, "server-final")?;
        match attributes.first() {
            Some(('v', signature)) => {
                let signature = BASE64
                    .decode(signature)
                    .map_err(|_| malformed("server-final", "the signature is not base64"))?;
                if self
                    .hash
                    .hmac_matches(server_key, auth_message.as_bytes(), &signature)
                {
                    Ok(())
                } else {
                    Err(Error::Authentication(
                        "the broker's SCRAM server signature does not verify: it does not hold \
                         this user's credential (or the exchange was tampered with)"
                            .into(),
                    ))
                }
            }
            _ => Err(malformed(
                "server-final",
                "it has no verifier (v=) attribute",
            )),
        }
    }
}

impl SaslSession for ScramSession {
    fn step(&mut self, challenge: Option<&[u8]>) -> Result<SaslStep, Error> {
        // Any failure ends the exchange: taking the state out leaves `Finished` behind.
        let state = std::mem::replace(&mut self.state, State::Finished);
        match (state, challenge) {
            (State::Start, None) => Ok(SaslStep::Send(self.client_first())),
            (State::ClientFirstSent { client_first_bare }, Some(server_first)) => Ok(
                SaslStep::Send(self.client_final(&client_first_bare, server_first)?),
            ),
            (
                State::ClientFinalSent {
                    server_key,
                    auth_message,
                },
                Some(server_final),
            ) => {
                self.verify_server_final(&server_key, &auth_message, server_final)?;
                Ok(SaslStep::Done)
            }
            _ => Err(Error::Authentication(
                "SCRAM exchange driven out of order (a step after the end, or a missing \
                 broker message)"
                    .into(),
            )),
        }
    }
}

/// The parts of a server-first message the client needs.
struct ServerFirst<'a> {
    /// Our nonce followed by the server's.
    nonce: &'a str,
    salt: Vec<u8>,
    iterations: u32,
}

impl<'a> ServerFirst<'a> {
    /// Parses `r=<nonce>,s=<salt>,i=<iterations>[,extensions]` and checks each part.
    fn parse(message: &'a str, client_nonce: &str) -> Result<Self, Error> {
        const WHAT: &str = "server-first";
        let attributes = attributes(message, WHAT)?;
        let [('r', nonce), ('s', salt), ('i', iterations), ..] = attributes[..] else {
            if attributes.first().is_some_and(|(name, _)| *name == 'm') {
                return Err(malformed(
                    WHAT,
                    "it requires an extension this client lacks",
                ));
            }
            return Err(malformed(
                WHAT,
                "expected r=, s= and i= attributes in order",
            ));
        };
        if !nonce.starts_with(client_nonce) {
            return Err(Error::Authentication(
                "the broker's SCRAM nonce does not start with the client's nonce".into(),
            ));
        }
        if !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(malformed(WHAT, "the nonce has non-printable characters"));
        }
        let salt = BASE64
            .decode(salt)
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| malformed(WHAT, "the salt is not non-empty base64"))?;
        let iterations = parse_iterations(iterations)
            .ok_or_else(|| malformed(WHAT, "the iteration count is not a number"))?;
        if iterations < MIN_ITERATIONS {
            return Err(Error::Authentication(format!(
                "the broker asked for {iterations} SCRAM iterations, below Kafka's minimum \
                 of {MIN_ITERATIONS}"
            )));
        }
        if iterations > MAX_ITERATIONS {
            return Err(Error::Authentication(format!(
                "the broker asked for {iterations} SCRAM iterations, more than the \
                 {MAX_ITERATIONS} this client computes (Kafka stores at most 16384)"
            )));
        }
        Ok(ServerFirst {
            nonce,
            salt,
            iterations,
        })
    }
}

/// A positive decimal number of at most `u32::MAX`, digits only (no sign, no spaces).
fn parse_iterations(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The `x=value` attributes of a server message, in order. An `e=` attribute anywhere is
/// the server reporting a failure, returned as such with the server's text.
fn attributes<'a>(message: &'a str, what: &str) -> Result<Vec<(char, &'a str)>, Error> {
    let mut out = Vec::new();
    for part in message.split(',') {
        let mut chars = part.chars();
        let (Some(name), Some('=')) = (chars.next(), chars.next()) else {
            return Err(malformed(what, "an attribute is not of the form x=value"));
        };
        if !name.is_ascii_alphabetic() {
            return Err(malformed(what, "an attribute name is not a letter"));
        }
        let value = chars.as_str();
        if name == 'e' {
            return Err(Error::Authentication(format!(
                "the broker refused SCRAM authentication: {value}"
            )));
        }
        out.push((name, value));
    }
    Ok(out)
}

fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, Error> {
    std::str::from_utf8(bytes).map_err(|_| malformed(what, "it is not UTF-8"))
}

fn malformed(what: &str, why: &str) -> Error {
    Error::Authentication(format!(
        "malformed SCRAM {what} message from the broker: {why}"
    ))
}

/// The user name as SCRAM sends it: SASLprep (RFC 4013), then `=` and `,` escaped as
/// `=3D` and `=2C` because `,` separates attributes.
pub(crate) fn sasl_name(username: &str) -> Result<String, Error> {
    let prepared = stringprep::saslprep(username).map_err(|_| {
        Error::Config(
            "SCRAM username contains characters SASLprep (RFC 4013) prohibits, such as \
             control characters"
                .into(),
        )
    })?;
    Ok(prepared.replace('=', "=3D").replace(',', "=2C"))
}

/// A fresh client nonce: random bytes from the OS's CSPRNG, base64-encoded so every
/// character is printable and none is `,`.
fn random_nonce() -> Result<String, Error> {
    let mut bytes = [0u8; NONCE_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::Authentication(format!(
            "could not get random bytes for the SCRAM nonce: {e}"
        ))
    })?;
    Ok(BASE64.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example exchange of RFC 7677 section 3.
    const RFC_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const RFC_SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                    s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const RFC_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                    p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn session(hash: ScramHash, user: &str, password: &str, nonce: &str) -> ScramSession {
        ScramSession::with_nonce(hash, user, Secret::new(password), nonce).unwrap()
    }

    fn rfc_session() -> ScramSession {
        session(ScramHash::Sha256, "user", "pencil", RFC_NONCE)
    }

    fn sent(step: Result<SaslStep, Error>) -> String {
        match step {
            Ok(SaslStep::Send(bytes)) => String::from_utf8(bytes).unwrap(),
            Ok(SaslStep::Done) => panic!("expected bytes to send, got Done"),
            Err(e) => panic!("expected bytes to send, got {e}"),
        }
    }

    fn auth_error(step: Result<SaslStep, Error>) -> String {
        match step {
            Err(Error::Authentication(msg)) => msg,
            Err(e) => panic!("expected an authentication error, got {e}"),
            Ok(_) => panic!("expected an authentication error, got success"),
        }
    }

    /// Runs the client up to the client-final message.
    fn to_client_final(s: &mut ScramSession, server_first: &str) -> Result<SaslStep, Error> {
        sent(s.step(None));
        s.step(Some(server_first.as_bytes()))
    }

    #[test]
    fn rfc7677_sha256_example() {
        let mut s = rfc_session();
        assert_eq!(sent(s.step(None)), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        assert_eq!(
            sent(s.step(Some(RFC_SERVER_FIRST.as_bytes()))),
            RFC_CLIENT_FINAL
        );
        assert!(matches!(
            s.step(Some(RFC_SERVER_FINAL.as_bytes())),
            Ok(SaslStep::Done)
        ));
        // Nothing may follow the end of the exchange.
        auth_error(s.step(Some(b"")));
    }

    #[test]
    fn rejects_a_tampered_server_signature() {
        let mut s = rfc_session();
        sent(to_client_final(&mut s, RFC_SERVER_FIRST));
        let msg = auth_error(s.step(Some(b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")));
        assert!(msg.contains("signature does not verify"), "{msg}");

        let mut s = rfc_session();
        sent(to_client_final(&mut s, RFC_SERVER_FIRST));
        // A truncated signature is no better.
        auth_error(s.step(Some(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95A==")));

        let mut s = rfc_session();
        sent(to_client_final(&mut s, RFC_SERVER_FIRST));
        auth_error(s.step(Some(b"x=1")));
    }

    /// Expected values computed independently with Python's standard library:
    /// `hashlib.pbkdf2_hmac('sha512', b'pencil', salt, 4096)` for SaltedPassword, then
    /// `hmac.new(..., hashlib.sha512)` and `hashlib.sha512` following RFC 5802 section 3
    /// for ClientKey, StoredKey, ClientSignature, ClientProof, ServerKey and
    /// ServerSignature, with salt `b"kafka-producer-sha512-salt"` and the nonces below.
    #[test]
    fn sha512_exchange_matches_an_independent_computation() {
        let client_nonce = "fyko+d2lbbFgONRv9qkxdawL";
        let server_first = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,\
                            s=a2Fma2EtcHJvZHVjZXItc2hhNTEyLXNhbHQ=,i=4096";
        let client_final = "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,\
                            p=0kw34txl5eIr8BiF3PjChvv6f8Dtk5D3YjqeS5r1eQ7q9GSO3oE8hLF2Km9/O7n+PVFLUBKPuIJ0wdFQU1v/zw==";
        let server_final = "v=kTU/dDQaqtmaQgBOBKz7wMr9fKHeCL64jpYBhXyRTB1EIU11qAzbBBg6el4LlT/2\
                            GSCuH7CfSU6kOc4tiBAD3A==";
        let mut s = session(ScramHash::Sha512, "user", "pencil", client_nonce);
        assert_eq!(sent(s.step(None)), format!("n,,n=user,r={client_nonce}"));
        assert_eq!(sent(s.step(Some(server_first.as_bytes()))), client_final);
        assert!(matches!(
            s.step(Some(server_final.as_bytes())),
            Ok(SaslStep::Done)
        ));
    }

    #[test]
    fn rejects_a_server_nonce_not_extending_ours() {
        let mut s = rfc_session();
        let msg = auth_error(to_client_final(
            &mut s,
            "r=XOprNGfwEbeRWgbNEkqO%hvYD,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        ));
        assert!(msg.contains("nonce"), "{msg}");
    }

    #[test]
    fn rejects_iterations_below_kafkas_minimum() {
        let mut s = rfc_session();
        let msg = auth_error(to_client_final(
            &mut s,
            "r=rOprNGfwEbeRWgbNEkqO%hvYD,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095",
        ));
        assert!(msg.contains("4095") && msg.contains("4096"), "{msg}");
        let mut s = rfc_session();
        let msg = auth_error(to_client_final(
            &mut s,
            "r=rOprNGfwEbeRWgbNEkqO%hvYD,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=2000000000",
        ));
        assert!(msg.contains("2000000000"), "{msg}");
    }

    #[test]
    fn reports_the_servers_error_attribute() {
        let mut s = rfc_session();
        let msg = auth_error(to_client_final(&mut s, "e=unknown-user"));
        assert!(msg.contains("unknown-user"), "{msg}");

        let mut s = rfc_session();
        sent(to_client_final(&mut s, RFC_SERVER_FIRST));
        let msg = auth_error(s.step(Some(b"e=invalid-proof")));
        assert!(msg.contains("invalid-proof"), "{msg}");
    }

    #[test]
    fn rejects_malformed_server_first_messages() {
        for bad in [
            "",
            "garbage",
            "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqO%x,i=4096",
            "r=rOprNGfwEbeRWgbNEkqO%x,s=W22ZaJ0SNY7soEsUEjb6gQ==",
            "r=rOprNGfwEbeRWgbNEkqO%x,s=not*base64,i=4096",
            "r=rOprNGfwEbeRWgbNEkqO%x,s=,i=4096",
            "r=rOprNGfwEbeRWgbNEkqO%x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=+4096",
            "r=rOprNGfwEbeRWgbNEkqO%x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999",
            "r=rOprNGfwEbeRWgbNEkqO x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "m=ext,r=rOprNGfwEbeRWgbNEkqO%x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        ] {
            let mut s = rfc_session();
            auth_error(to_client_final(&mut s, bad));
        }
        let mut s = rfc_session();
        sent(s.step(None));
        auth_error(s.step(Some(&[0xff, 0xfe])));
    }

    #[test]
    fn accepts_server_first_extensions() {
        let mut s = rfc_session();
        let with_extension = format!("{RFC_SERVER_FIRST},x=future");
        let client_final = sent(to_client_final(&mut s, &with_extension));
        assert!(client_final.starts_with("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYD"));
    }

    #[test]
    fn steps_out_of_order_fail() {
        let mut s = rfc_session();
        auth_error(s.step(Some(RFC_SERVER_FIRST.as_bytes())));
        let mut s = rfc_session();
        sent(s.step(None));
        auth_error(s.step(None));
    }

    #[test]
    fn escapes_equals_and_comma_in_names() {
        let mut s = session(ScramHash::Sha256, "a=b,c", "pw", "nonce");
        assert_eq!(sent(s.step(None)), "n,,n=a=3Db=2Cc,r=nonce");
        assert_eq!(sasl_name("==,,").unwrap(), "=3D=3D=2C=2C");
    }

    #[test]
    fn saslprep_maps_and_rejects_names() {
        // Non-ASCII space maps to a space; a soft hyphen maps to nothing.
        assert_eq!(sasl_name("a\u{a0}b\u{ad}c").unwrap(), "a bc");
        assert!(matches!(sasl_name("bad\u{7}name"), Err(Error::Config(_))));
    }

    #[test]
    fn random_nonces_are_printable_distinct_and_long() {
        let a = random_nonce().unwrap();
        let b = random_nonce().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| (0x21..=0x7e).contains(&c) && c != b','));
        let mut s = ScramSession::new(ScramHash::Sha256, "user", Secret::new("pw")).unwrap();
        let first = sent(s.step(None));
        assert!(first.starts_with("n,,n=user,r=") && first.len() == "n,,n=user,r=".len() + 32);
    }
}
