//! The crate's error type and Kafka's broker error codes.
//!
//! [`Error`] is what every fallible public call returns and what a failed record's future or
//! callback receives. [`ErrorCode`] is the broker's view: the numeric code of a response,
//! its name, and whether Kafka classifies it as retriable (the Java client's
//! `RetriableException` subclasses).

use std::fmt;

use crate::protocol::DecodeError;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration property is missing, unknown or has a bad value.
    #[error("configuration error: {0}")]
    Config(String),
    /// A key or value serializer failed for this record.
    #[error("serialization failed: {0}")]
    Serialization(String),
    /// No buffer memory became free within max.block.ms.
    #[error("buffer memory exhausted: no space became free within {waited_ms} ms")]
    BufferExhausted {
        /// How long `send` waited.
        waited_ms: u64,
    },
    /// Topic metadata did not arrive within max.block.ms.
    #[error("metadata for topic {topic:?} not available within {waited_ms} ms")]
    MetadataTimeout {
        /// The topic whose metadata was awaited.
        topic: String,
        /// How long `send` waited.
        waited_ms: u64,
    },
    /// The topic name is not a legal Kafka topic name.
    #[error("invalid topic name {topic:?}: {reason}")]
    InvalidTopic {
        /// The name at fault.
        topic: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The record names a partition the topic does not have.
    #[error("partition {partition} of topic {topic:?} does not exist (it has {partitions})")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many partitions the topic has.
        partitions: usize,
    },
    /// The serialized record is larger than max.request.size or buffer.memory.
    #[error("record of {size} bytes is larger than the limit of {limit} bytes ({setting})")]
    RecordTooLarge {
        /// Serialized size of the record.
        size: usize,
        /// The limit it broke.
        limit: usize,
        /// The setting that sets the limit.
        setting: &'static str,
    },
    /// The record was not acknowledged within delivery.timeout.ms.
    #[error("record expired after {elapsed_ms} ms without acknowledgement (delivery.timeout.ms)")]
    DeliveryTimeout {
        /// Time since the record was sent.
        elapsed_ms: u64,
    },
    /// The broker answered with an error code.
    #[error("broker error {code}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// The Kafka error code.
        code: ErrorCode,
        /// The broker's error message, when it sent one.
        message: Option<String>,
    },
    /// A connection failed or broke.
    #[error("network error talking to {broker}: {reason}")]
    Network {
        /// The broker address.
        broker: String,
        /// What happened.
        reason: String,
    },
    /// A broker sent bytes that do not decode.
    #[error("malformed response from the broker: {0}")]
    Protocol(#[from] DecodeError),
    /// The broker supports no version of an API in the range this client implements.
    #[error("broker supports no version of API {api_key} that this client implements")]
    UnsupportedVersion {
        /// The API key.
        api_key: i16,
    },
    /// The producer was closed.
    #[error("the producer is closed")]
    Closed,
    /// A fatal error; the producer cannot continue (for example a fenced producer id).
    #[error("fatal producer error: {0}")]
    Fatal(String),
}

impl Error {
    /// Whether retrying the same operation may succeed, following Kafka's classification:
    /// broker codes by their Java exception type, network failures and timeouts as retriable.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Broker { code, .. } => code.is_retriable(),
            Error::Network { .. }
            | Error::MetadataTimeout { .. }
            | Error::DeliveryTimeout { .. }
            | Error::BufferExhausted { .. } => true,
            _ => false,
        }
    }

    /// A broker error for `code` with no message.
    pub fn broker(code: ErrorCode) -> Self {
        Error::Broker {
            code,
            message: None,
        }
    }
}

/// Declares [`ErrorCode`] from one table: variant, code, retriable.
macro_rules! error_codes {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $retriable:literal; )*) => {
        /// A Kafka protocol error code, as brokers send them in responses.
        ///
        /// Codes this crate does not know yet decode to [`ErrorCode::Unknown`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $name, )*
            /// A code not in this table.
            Unknown(i16),
        }

        impl ErrorCode {
            /// The code for a numeric value from the wire.
            pub fn from_code(code: i16) -> Self {
                match code {
                    $( $code => ErrorCode::$name, )*
                    other => ErrorCode::Unknown(other),
                }
            }

            /// The numeric value.
            pub fn code(self) -> i16 {
                match self {
                    $( ErrorCode::$name => $code, )*
                    ErrorCode::Unknown(c) => c,
                }
            }

            /// Whether Kafka classifies the error as retriable.
            pub fn is_retriable(self) -> bool {
                match self {
                    $( ErrorCode::$name => $retriable, )*
                    ErrorCode::Unknown(_) => false,
                }
            }
        }
    };
}

error_codes! {
    /// -1: an unexpected server error.
    UnknownServerError = -1, false;
    /// 0: no error.
    None = 0, false;
    /// 1: the requested offset is out of range.
    OffsetOutOfRange = 1, false;
    /// 2: the record failed its CRC check or is otherwise corrupt.
    CorruptMessage = 2, true;
    /// 3: the broker does not host this topic-partition.
    UnknownTopicOrPartition = 3, true;
    /// 4: the requested fetch size is invalid.
    InvalidFetchSize = 4, false;
    /// 5: a leader election is in progress.
    LeaderNotAvailable = 5, true;
    /// 6: the broker is not the partition's leader.
    NotLeaderOrFollower = 6, true;
    /// 7: the request timed out.
    RequestTimedOut = 7, true;
    /// 8: the broker is not available.
    BrokerNotAvailable = 8, false;
    /// 9: the replica is not available.
    ReplicaNotAvailable = 9, true;
    /// 10: the request is larger than the broker's maximum.
    MessageTooLarge = 10, false;
    /// 11: the controller moved.
    StaleControllerEpoch = 11, false;
    /// 12: offset metadata too large.
    OffsetMetadataTooLarge = 12, false;
    /// 13: the server disconnected before a response.
    NetworkException = 13, true;
    /// 14: the coordinator is loading.
    CoordinatorLoadInProgress = 14, true;
    /// 15: the coordinator is not available.
    CoordinatorNotAvailable = 15, true;
    /// 16: not the coordinator.
    NotCoordinator = 16, true;
    /// 17: the topic name is invalid.
    InvalidTopicException = 17, false;
    /// 18: the batch is larger than the broker's segment size.
    RecordListTooLarge = 18, false;
    /// 19: fewer in-sync replicas than min.insync.replicas.
    NotEnoughReplicas = 19, true;
    /// 20: written, but to fewer in-sync replicas than required.
    NotEnoughReplicasAfterAppend = 20, true;
    /// 21: invalid acks value.
    InvalidRequiredAcks = 21, false;
    /// 29: not authorized for the topic.
    TopicAuthorizationFailed = 29, false;
    /// 31: not authorized for the cluster operation.
    ClusterAuthorizationFailed = 31, false;
    /// 32: record timestamp out of the acceptable range.
    InvalidTimestamp = 32, false;
    /// 35: the API version is not supported.
    UnsupportedVersion = 35, false;
    /// 42: the request is malformed.
    InvalidRequest = 42, false;
    /// 43: the message format does not support the request.
    UnsupportedForMessageFormat = 43, false;
    /// 44: policy violation.
    PolicyViolation = 44, false;
    /// 45: out-of-order sequence number.
    OutOfOrderSequenceNumber = 45, false;
    /// 46: duplicate sequence number.
    DuplicateSequenceNumber = 46, false;
    /// 47: the producer epoch is old (fenced).
    InvalidProducerEpoch = 47, false;
    /// 48: invalid transaction state.
    InvalidTxnState = 48, false;
    /// 49: the producer id is not assigned to the transactional id.
    InvalidProducerIdMapping = 49, false;
    /// 50: invalid transaction timeout.
    InvalidTransactionTimeout = 50, false;
    /// 51: concurrent transactions.
    ConcurrentTransactions = 51, true;
    /// 53: not authorized for the transactional id.
    TransactionalIdAuthorizationFailed = 53, false;
    /// 56: disk error on the broker.
    KafkaStorageError = 56, true;
    /// 59: the broker does not know the producer id.
    UnknownProducerId = 59, false;
    /// 74: the leader epoch is newer than the broker's.
    FencedLeaderEpoch = 74, true;
    /// 75: the leader epoch is older than the broker's.
    UnknownLeaderEpoch = 75, true;
    /// 76: compression type not supported.
    UnsupportedCompressionType = 76, false;
    /// 87: the batch contained invalid records.
    InvalidRecord = 87, false;
    /// 89: throttling quota exceeded.
    ThrottlingQuotaExceeded = 89, true;
    /// 90: the producer was fenced by a newer instance.
    ProducerFenced = 90, false;
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Unknown(c) => write!(f, "UNKNOWN({c})"),
            other => write!(f, "{other:?}({})", other.code()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_their_numbers() {
        for c in -1..=120 {
            assert_eq!(ErrorCode::from_code(c).code(), c);
        }
        assert_eq!(ErrorCode::from_code(6), ErrorCode::NotLeaderOrFollower);
        assert_eq!(ErrorCode::from_code(-42), ErrorCode::Unknown(-42));
    }

    #[test]
    fn classifies_retriable_codes_like_kafka() {
        assert!(ErrorCode::NotLeaderOrFollower.is_retriable());
        assert!(ErrorCode::NotEnoughReplicas.is_retriable());
        assert!(!ErrorCode::MessageTooLarge.is_retriable());
        assert!(!ErrorCode::TopicAuthorizationFailed.is_retriable());
        assert!(Error::broker(ErrorCode::RequestTimedOut).is_retriable());
        assert!(!Error::Closed.is_retriable());
    }
}
