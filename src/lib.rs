//! # kafka-producer
//!
//! A pure-Rust, blocking, thread-based Apache Kafka producer client library.
//!
//! The crate is built bottom-up in layers (see `DESIGN.md`):
//!
//! - [`protocol`]: the Kafka wire protocol, pure encode/decode with no I/O;
//! - [`record_batch`]: the RecordBatch v2 format (magic 2) with every compression codec;
//! - [`net`]: a blocking broker connection with a reader thread per connection.
//!
//! The producer itself (`Producer`, `send`, `flush`, callbacks) is built on these layers.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

pub mod config;
pub mod error;
pub mod net;
pub mod partition;
pub mod protocol;
pub mod record;
pub mod record_batch;
pub mod serialize;

pub use config::{Acks, ProducerConfig};
pub use error::{Error, ErrorCode};
pub use partition::{Partitioner, RoundRobinPartitioner};
pub use record::{Header, Headers, PartitionInfo, ProducerRecord, RecordMetadata, TopicPartition};
pub use record_batch::Compression;
#[cfg(feature = "json")]
pub use serialize::JsonSerializer;
pub use serialize::{
    BytesSerializer, IntegerSerializer, LongSerializer, Serializer, StringSerializer,
};
