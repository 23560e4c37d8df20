//! The byte stream under a connection: plain TCP, or TLS over TCP.
//!
//! A connection is set up on one thread ([`Stream`]: TLS handshake, ApiVersions, SASL),
//! then split into a [`ReadHalf`] for its reader thread and a [`WriteHalf`] for its writer
//! thread ([`Stream::split`]).
//!
//! # TLS across two threads
//!
//! One `rustls::ClientConnection` holds the TLS state of both directions, so the halves
//! share it behind a mutex. The lock is held only to encrypt or decrypt, never across
//! socket I/O: the writer encrypts a frame under the lock and writes the ciphertext after
//! releasing it; the reader reads ciphertext without the lock and takes it to decrypt. A
//! broker that stops reading (the writer blocked in a write) thus never keeps the reader
//! from draining responses, which is what lets such a broker make progress again. Only the
//! writer thread writes to the socket, so TLS records leave in the order they were sealed.
//! TLS output that reading produces (a TLS 1.3 KeyUpdate answer) waits in rustls's buffer
//! and leaves with the next frame the writer seals, ahead of it.

use std::io::{self, Read, Write};
use std::net::TcpStream;
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(feature = "tls")]
use parking_lot::Mutex;

/// A connection's byte stream while it is set up, on the connecting thread.
#[derive(Debug)]
pub(crate) enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP, after the TLS handshake.
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    /// The TCP socket underneath.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.get_ref(),
        }
    }

    /// Bounds every following read and write by `deadline`: the socket timeouts are set to
    /// the time left. Fails with [`io::ErrorKind::TimedOut`] once it has passed.
    pub(crate) fn arm(&self, deadline: Instant) -> io::Result<()> {
        arm(self.tcp(), deadline)
    }

    /// Runs the TLS handshake over `tcp` with `config`, expecting a certificate for
    /// `server_name`, every read and write bounded by `deadline`.
    #[cfg(feature = "tls")]
    pub(crate) fn tls(
        tcp: TcpStream,
        config: Arc<rustls::ClientConfig>,
        server_name: rustls::pki_types::ServerName<'static>,
        deadline: Instant,
    ) -> io::Result<Self> {
        let mut connection = rustls::ClientConnection::new(config, server_name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        // Frames are sealed whole (up to max.request.size); rustls's default 64 KiB limit
        // on buffered output would cut them.
        connection.set_buffer_limit(None);
        let mut tcp = tcp;
        while connection.is_handshaking() {
            arm(&tcp, deadline)?;
            connection.complete_io(&mut tcp)?;
        }
        Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(
            connection, tcp,
        ))))
    }

    /// Splits the stream for a reader and a writer thread, after the socket timeouts are
    /// set for the running connection.
    pub(crate) fn split(self) -> io::Result<(ReadHalf, WriteHalf)> {
        match self {
            Stream::Plain(tcp) => {
                let read = tcp.try_clone()?;
                Ok((ReadHalf::Plain(read), WriteHalf::Plain(tcp)))
            }
            #[cfg(feature = "tls")]
            Stream::Tls(stream) => {
                let (connection, tcp) = stream.into_parts();
                let read = tcp.try_clone()?;
                let tls = Arc::new(Mutex::new(connection));
                Ok((
                    ReadHalf::Tls(Box::new(TlsReader {
                        tcp: read,
                        tls: Arc::clone(&tls),
                        buf: vec![0; TLS_READ_CHUNK],
                        start: 0,
                        end: 0,
                        eof: false,
                    })),
                    WriteHalf::Tls { tcp, tls },
                ))
            }
        }
    }
}

/// Sets `tcp`'s read and write timeouts to the time left until `deadline`; fails with
/// [`io::ErrorKind::TimedOut`] once it has passed.
fn arm(tcp: &TcpStream, deadline: Instant) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
    }
    // A zero timeout means "none" to the socket; keep at least a millisecond.
    let left = left.max(Duration::from_millis(1));
    tcp.set_read_timeout(Some(left))?;
    tcp.set_write_timeout(Some(left))
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Ciphertext read from the socket per read call: a full TLS record and then some.
#[cfg(feature = "tls")]
const TLS_READ_CHUNK: usize = 64 * 1024;

/// The reading side, owned by the connection's reader thread.
#[derive(Debug)]
pub(crate) enum ReadHalf {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS: decrypts under the shared lock.
    #[cfg(feature = "tls")]
    Tls(Box<TlsReader>),
}

impl ReadHalf {
    /// The TCP socket underneath.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            ReadHalf::Plain(s) => s,
            #[cfg(feature = "tls")]
            ReadHalf::Tls(r) => &r.tcp,
        }
    }
}

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ReadHalf::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            ReadHalf::Tls(r) => r.read(buf),
        }
    }
}

/// The TLS reading side: ciphertext read without the lock, decrypted with it.
#[cfg(feature = "tls")]
pub(crate) struct TlsReader {
    tcp: TcpStream,
    tls: Arc<Mutex<rustls::ClientConnection>>,
    /// Ciphertext read from the socket; `start..end` is not yet handed to rustls.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The socket reached its end (rustls has been told).
    eof: bool,
}

#[cfg(feature = "tls")]
impl std::fmt::Debug for TlsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReader")
            .field("buffered", &(self.end - self.start))
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "tls")]
impl TlsReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            {
                let mut tls = self.tls.lock();
                match tls.reader().read(out) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if self.start < self.end {
                    let mut pending = &self.buf[self.start..self.end];
                    let taken = tls.read_tls(&mut pending)?;
                    self.start += taken;
                    tls.process_new_packets()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    continue;
                }
                if self.eof {
                    // rustls knows; its reader said "no data" without an error: a clean end.
                    return Ok(0);
                }
            }
            let n = self.tcp.read(&mut self.buf)?;
            (self.start, self.end) = (0, n);
            if n == 0 {
                self.eof = true;
                let mut tls = self.tls.lock();
                tls.read_tls(&mut io::empty())?;
                tls.process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            }
        }
    }
}

/// The writing side, owned by the connection's writer thread.
#[derive(Debug)]
pub(crate) enum WriteHalf {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS: encrypts under the shared lock, writes after releasing it.
    #[cfg(feature = "tls")]
    Tls {
        /// The socket.
        tcp: TcpStream,
        /// Shared with the reader.
        tls: Arc<Mutex<rustls::ClientConnection>>,
    },
}

impl WriteHalf {
    /// The TCP socket underneath.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            WriteHalf::Plain(s) => s,
            #[cfg(feature = "tls")]
            WriteHalf::Tls { tcp, .. } => tcp,
        }
    }

    /// Writes one whole frame (and, for TLS, any TLS output waiting before it).
    pub(crate) fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        match self {
            WriteHalf::Plain(s) => s.write_all(frame),
            #[cfg(feature = "tls")]
            WriteHalf::Tls { tcp, tls } => {
                let sealed = {
                    let mut tls = tls.lock();
                    tls.writer().write_all(frame)?;
                    // Room for the records' headers and tags (at most 22 bytes per 16 KiB).
                    let mut sealed = Vec::with_capacity(frame.len() + frame.len() / 512 + 64);
                    while tls.wants_write() {
                        tls.write_tls(&mut sealed)?;
                    }
                    sealed
                };
                tcp.write_all(&sealed)
            }
        }
    }
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use std::net::TcpListener;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

    use super::*;
    use crate::net::read_frame;

    /// A TLS echo server on a free loopback port: every size-prefixed frame it reads, it
    /// writes back, until the client hangs up.
    fn echo_server() -> (u16, CertificateDer<'static>, std::thread::JoinHandle<()>) {
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = key.cert.der().clone();
        let private = PrivateKeyDer::Pkcs8(key.key_pair.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], private)
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let tls = rustls::ServerConnection::new(Arc::new(config)).unwrap();
            let mut stream = rustls::StreamOwned::new(tls, tcp);
            while let Ok(frame) = read_frame(&mut stream, 8 << 20) {
                let size = (frame.len() as i32).to_be_bytes();
                stream.write_all(&size).unwrap();
                stream.write_all(&frame).unwrap();
            }
        });
        (port, cert, server)
    }

    /// A client configuration that trusts `cert` alone.
    fn trusting(cert: CertificateDer<'static>) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth()
    }

    fn frame(size: usize, seed: u8) -> Vec<u8> {
        let mut f = (size as i32).to_be_bytes().to_vec();
        f.extend((0..size).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
        f
    }

    /// Frames written by one thread through the write half and read back by another
    /// through the read half, concurrently, across record boundaries (16 KiB) and far
    /// beyond rustls's default 64 KiB output buffer, arrive whole and in order.
    #[test]
    fn split_tls_halves_carry_frames_both_ways_concurrently() {
        let (port, cert, server) = echo_server();
        let config = trusting(cert);
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stream = Stream::tls(tcp, Arc::new(config), name, deadline).unwrap();
        // One round trip before the split, as the handshake chain does.
        stream.write_all(&frame(10, 7)).unwrap();
        assert_eq!(read_frame(&mut stream, 1 << 20).unwrap(), frame(10, 7)[4..]);
        let (mut read, mut write) = stream.split().unwrap();
        let sizes: Vec<usize> = [4, 100, 16_379, 16_380, 16_384, 65_536, 70_000, 1_048_576]
            .into_iter()
            .cycle()
            .take(64)
            .collect();
        let expected = sizes.clone();
        let writer = std::thread::spawn(move || {
            for (i, size) in sizes.into_iter().enumerate() {
                write.write_frame(&frame(size, i as u8)).unwrap();
            }
            write
        });
        for (i, size) in expected.into_iter().enumerate() {
            let echoed = read_frame(&mut read, 8 << 20).unwrap();
            assert_eq!(echoed.len(), size, "frame {i}");
            assert!(echoed == frame(size, i as u8)[4..], "frame {i} differs");
        }
        let write = writer.join().unwrap();
        write.tcp().shutdown(std::net::Shutdown::Both).unwrap();
        server.join().unwrap();
    }

    /// A peer that accepts the connection and never answers the ClientHello (a frozen
    /// broker): the handshake gives up at its deadline instead of hanging.
    #[test]
    fn a_silent_peer_fails_the_tls_handshake_at_its_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_secs(2));
            drop(tcp);
        });
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let config = trusting(key.cert.der().clone());
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let start = Instant::now();
        let deadline = start + Duration::from_millis(300);
        let error = Stream::tls(tcp, Arc::new(config), name, deadline).unwrap_err();
        let took = start.elapsed();
        assert!(
            matches!(
                error.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{error:?}"
        );
        assert!(took < Duration::from_millis(1500), "{took:?}");
        silent.join().unwrap();
    }
}
