//! # kafka-producer
//!
//! A pure-Rust, blocking, thread-based Apache Kafka producer. Send records from any number
//! of threads with `producer.send(record).wait()` or with callbacks; no async runtime.
//!
//! ```no_run
//! use kafka_producer::{Producer, ProducerRecord};
//! # fn main() -> Result<(), kafka_producer::Error> {
//! let producer: Producer = Producer::from_properties([
//!     ("bootstrap.servers", "127.0.0.1:9092"),
//!     ("acks", "all"),
//! ])?;
//! let md = producer
//!     .send(ProducerRecord::new("orders", b"hello".to_vec()).with_key(b"k1".to_vec()))
//!     .wait()?;
//! println!("written to {}-{} at offset {}", md.topic(), md.partition(), md.offset());
//! producer.send_with_callback(ProducerRecord::new("orders", b"x".to_vec()), |res| {
//!     if let Err(e) = res {
//!         eprintln!("failed: {e} (retriable: {})", e.is_retriable());
//!     }
//! });
//! producer.flush()?;
//! # Ok(()) }
//! ```
//!
//! The public API is the producer's: [`Producer`] and its builder, [`ProducerConfig`],
//! records, serializers, partitioners, errors, security settings and transactions. The
//! layers underneath (see `DESIGN.md`: `protocol`, pure wire encode/decode;
//! `record_batch`, RecordBatch v2 and codecs; `net`, blocking broker connections) are
//! private; the crate feature `unstable-internals` makes them public for the crate's own
//! tests, benches and fuzz targets, with no stability promise.
#![doc = include_str!("docs/guide.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

mod accumulator;
mod channel;
pub mod config;
mod core;
mod delivery;
pub mod error;
mod idempotence;
pub mod interceptor;
mod metadata;
mod metrics;
#[cfg(feature = "metrics")]
pub mod metrics_export;
pub mod mock;
pub mod partition;
mod producer;
mod properties;
pub mod record;
// The layers under the producer: public only with the crate feature `unstable-internals`
// (the crate's own tests, benches and fuzz targets; no stability promise).
#[cfg(feature = "unstable-internals")]
pub mod net;
#[cfg(not(feature = "unstable-internals"))]
#[allow(dead_code, unused_imports)]
mod net;
#[cfg(feature = "unstable-internals")]
pub mod protocol;
#[cfg(not(feature = "unstable-internals"))]
#[allow(dead_code, unused_imports)]
mod protocol;
#[cfg(feature = "unstable-internals")]
pub mod record_batch;
#[cfg(not(feature = "unstable-internals"))]
#[allow(dead_code, unused_imports)]
mod record_batch;
pub mod security;
mod sender;
pub mod serialize;
mod statistics;
mod transaction;

pub use config::{Acks, ProducerConfig};
pub use delivery::SendFuture;
pub use error::{Error, ErrorCode, ProtocolError};
pub use interceptor::ProducerInterceptor;
pub use metrics::{Metric, ProducerMetrics};
pub use partition::{Partitioner, RoundRobinPartitioner};
pub use producer::{Producer, ProducerBuilder, TrySendError};
pub use record::{
    Header, Headers, PartitionInfo, ProducerRecord, RecordMetadata, Topic, TopicPartition,
};
pub use record_batch::Compression;
pub use security::{
    OAuthBearerToken, OAuthBearerTokenProvider, SaslMechanism, Secret, SecurityProtocol,
    UnsecuredTokenProvider,
};
#[cfg(feature = "json")]
pub use serialize::JsonSerializer;
pub use serialize::{
    BytesSerializer, IntegerSerializer, LongSerializer, Serializer, StringSerializer,
};
pub use transaction::{ConsumerGroupMetadata, OffsetAndMetadata};
