//! The crate's error type and Kafka's broker error codes.
//!
//! [`Error`] is what every fallible public call returns and what a failed record's future or
//! callback receives. [`ErrorCode`] is the broker's view: the numeric code of a response,
//! its name, and whether Kafka classifies it as retriable (the Java client's
//! `RetriableException` subclasses).

use std::fmt;

use crate::protocol::DecodeError;

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, thiserror::Error)]
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
    /// Authentication failed: SASL (wrong password, unknown user, unsupported mechanism,
    /// a token refused) or TLS (untrusted or expired certificate, hostname mismatch, a
    /// handshake with a peer that does not speak TLS). The message names the broker and
    /// the cause, never a secret. Not retriable: the same credentials fail again.
    #[error("authentication failed: {0}")]
    Authentication(String),
    /// A broker sent bytes that do not decode.
    #[error("malformed response from the broker: {0}")]
    Protocol(ProtocolError),
    /// The broker supports no version of an API in the range this client implements.
    #[error("broker supports no version of API {api_key} that this client implements")]
    UnsupportedVersion {
        /// The API key.
        api_key: i16,
    },
    /// A blocking call (flush, close) did not finish within its timeout.
    #[error("{operation} did not finish within {waited_ms} ms")]
    Timeout {
        /// The call that timed out.
        operation: &'static str,
        /// How long it waited.
        waited_ms: u64,
    },
    /// The call is not allowed where it was made (for example `flush`, or waiting for a
    /// send, inside a producer callback, which would deadlock).
    #[error("illegal state: {0}")]
    IllegalState(String),
    /// The producer was closed.
    #[error("the producer is closed")]
    Closed,
    /// A fatal error; the producer cannot continue (for example a producer id the broker
    /// refuses, or a missing authorization for the transactional id).
    #[error("fatal producer error: {0}")]
    Fatal(String),
    /// Another producer with the same `transactional.id` called `init_transactions`: this
    /// one is fenced off (a zombie) and can only be closed. Its open transaction is never
    /// committed.
    #[error("producer fenced: {0}")]
    Fenced(String),
    /// The open transaction cannot be committed because of an earlier error in it (a
    /// record that failed, a request the coordinator refused, the transaction timed out on
    /// the broker): call `abort_transaction()`, then begin a new transaction. The cause is
    /// inside.
    #[error("the transaction must be aborted: {0}")]
    TransactionAbortable(Box<Error>),
    /// The record was not sent because its transaction was aborted.
    #[error("the record's transaction was aborted before the record was sent")]
    TransactionAborted,
    /// The record was dropped by [`Producer::purge`](crate::Producer::purge) before it was
    /// sent. Not retriable: the producer did not try to send it.
    #[error("the record was purged before it was sent (Producer::purge)")]
    Purged,
}

/// Why a broker's bytes did not decode: opaque, its `Display` says what was wrong and
/// where (the decoder behind it is not public API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(DecodeError);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ProtocolError {}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Error::Protocol(ProtocolError(e))
    }
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

/// Declares [`ErrorCode`] from one table: variant, code, retriable, Kafka's name.
macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $retriable:literal, $name:literal; )*) => {
        /// A Kafka protocol error code, as brokers send them in responses.
        ///
        /// Codes this crate does not know yet decode to [`ErrorCode::Unknown`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
            /// A code not in this table.
            Unknown(i16),
        }

        impl ErrorCode {
            /// Every code in the table, in table order.
            #[cfg(test)]
            const TABLE: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The code for a numeric value from the wire.
            pub fn from_code(code: i16) -> Self {
                match code {
                    $( $code => ErrorCode::$variant, )*
                    other => ErrorCode::Unknown(other),
                }
            }

            /// The numeric value.
            pub fn code(self) -> i16 {
                match self {
                    $( ErrorCode::$variant => $code, )*
                    ErrorCode::Unknown(c) => c,
                }
            }

            /// Kafka's name for the code, e.g. `"NOT_LEADER_OR_FOLLOWER"`; `"UNKNOWN"` for
            /// codes not in the table.
            pub fn name(self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => $name, )*
                    ErrorCode::Unknown(_) => "UNKNOWN",
                }
            }

            /// Whether Kafka classifies the error as retriable.
            pub fn is_retriable(self) -> bool {
                match self {
                    $( ErrorCode::$variant => $retriable, )*
                    ErrorCode::Unknown(_) => false,
                }
            }
        }
    };
}

// Codes -1 to 135, complete through Kafka 4.4. The retriable flag follows the Java client:
// true exactly when the code's exception class derives from `RetriableException`, directly
// or through `RefreshRetriableException` / `InvalidMetadataException`.
error_codes! {
    /// The broker hit an unexpected failure while handling the request.
    UnknownServerError = -1, false, "UNKNOWN_SERVER_ERROR";
    /// Success: the response carries no error.
    None = 0, false, "NONE";
    /// The requested offset lies outside the log's retained range.
    OffsetOutOfRange = 1, false, "OFFSET_OUT_OF_RANGE";
    /// A record failed its CRC check, is oversized, or is otherwise malformed.
    CorruptMessage = 2, true, "CORRUPT_MESSAGE";
    /// The broker does not host this topic-partition (it may not exist yet).
    UnknownTopicOrPartition = 3, true, "UNKNOWN_TOPIC_OR_PARTITION";
    /// The fetch size in the request is not acceptable.
    InvalidFetchSize = 4, false, "INVALID_FETCH_SIZE";
    /// The partition currently has no leader, usually during an election.
    LeaderNotAvailable = 5, true, "LEADER_NOT_AVAILABLE";
    /// The broker is not the partition's leader (or not a replica of it).
    NotLeaderOrFollower = 6, true, "NOT_LEADER_OR_FOLLOWER";
    /// The broker gave up waiting for the request to complete.
    RequestTimedOut = 7, true, "REQUEST_TIMED_OUT";
    /// The broker is not available.
    BrokerNotAvailable = 8, false, "BROKER_NOT_AVAILABLE";
    /// The replica for this partition is not available.
    ReplicaNotAvailable = 9, true, "REPLICA_NOT_AVAILABLE";
    /// The request held a record larger than the broker accepts.
    MessageTooLarge = 10, false, "MESSAGE_TOO_LARGE";
    /// The controller moved to another node.
    StaleControllerEpoch = 11, false, "STALE_CONTROLLER_EPOCH";
    /// The metadata attached to an offset commit is too large.
    OffsetMetadataTooLarge = 12, false, "OFFSET_METADATA_TOO_LARGE";
    /// The connection closed before a response arrived.
    NetworkException = 13, true, "NETWORK_EXCEPTION";
    /// The coordinator is still loading its state.
    CoordinatorLoadInProgress = 14, true, "COORDINATOR_LOAD_IN_PROGRESS";
    /// The coordinator is not available.
    CoordinatorNotAvailable = 15, true, "COORDINATOR_NOT_AVAILABLE";
    /// The broker is not the coordinator for this group or transaction.
    NotCoordinator = 16, true, "NOT_COORDINATOR";
    /// The request names an invalid topic (bad name, or an internal topic).
    InvalidTopicException = 17, false, "INVALID_TOPIC_EXCEPTION";
    /// The batch is larger than the broker's log segment size.
    RecordListTooLarge = 18, false, "RECORD_LIST_TOO_LARGE";
    /// Fewer in-sync replicas than min.insync.replicas; nothing was written.
    NotEnoughReplicas = 19, true, "NOT_ENOUGH_REPLICAS";
    /// Written to the leader, but to fewer in-sync replicas than required.
    NotEnoughReplicasAfterAppend = 20, true, "NOT_ENOUGH_REPLICAS_AFTER_APPEND";
    /// The produce request's acks value is not allowed.
    InvalidRequiredAcks = 21, false, "INVALID_REQUIRED_ACKS";
    /// The group generation id is not current.
    IllegalGeneration = 22, false, "ILLEGAL_GENERATION";
    /// The member's group protocols do not match those of the group.
    InconsistentGroupProtocol = 23, false, "INCONSISTENT_GROUP_PROTOCOL";
    /// The group id is empty or otherwise invalid.
    InvalidGroupId = 24, false, "INVALID_GROUP_ID";
    /// The coordinator does not know this group member.
    UnknownMemberId = 25, false, "UNKNOWN_MEMBER_ID";
    /// The session timeout is outside the broker's allowed range.
    InvalidSessionTimeout = 26, false, "INVALID_SESSION_TIMEOUT";
    /// The group is rebalancing, so the member must rejoin.
    RebalanceInProgress = 27, false, "REBALANCE_IN_PROGRESS";
    /// The offset commit data has an invalid size.
    InvalidCommitOffsetSize = 28, false, "INVALID_COMMIT_OFFSET_SIZE";
    /// The client is not authorized to access the topic.
    TopicAuthorizationFailed = 29, false, "TOPIC_AUTHORIZATION_FAILED";
    /// The client is not authorized to access the group.
    GroupAuthorizationFailed = 30, false, "GROUP_AUTHORIZATION_FAILED";
    /// The client is not authorized for this cluster-level operation.
    ClusterAuthorizationFailed = 31, false, "CLUSTER_AUTHORIZATION_FAILED";
    /// A record timestamp is outside the range the broker accepts.
    InvalidTimestamp = 32, false, "INVALID_TIMESTAMP";
    /// The broker does not support the requested SASL mechanism.
    UnsupportedSaslMechanism = 33, false, "UNSUPPORTED_SASL_MECHANISM";
    /// The request is not valid in the current SASL state.
    IllegalSaslState = 34, false, "ILLEGAL_SASL_STATE";
    /// The broker does not support this API version.
    UnsupportedVersion = 35, false, "UNSUPPORTED_VERSION";
    /// A topic with this name already exists.
    TopicAlreadyExists = 36, false, "TOPIC_ALREADY_EXISTS";
    /// The number of partitions is invalid.
    InvalidPartitions = 37, false, "INVALID_PARTITIONS";
    /// The replication factor is invalid.
    InvalidReplicationFactor = 38, false, "INVALID_REPLICATION_FACTOR";
    /// The replica assignment is invalid.
    InvalidReplicaAssignment = 39, false, "INVALID_REPLICA_ASSIGNMENT";
    /// The configuration is invalid.
    InvalidConfig = 40, false, "INVALID_CONFIG";
    /// The node is not the active controller.
    NotController = 41, true, "NOT_CONTROLLER";
    /// The request is malformed or was sent to an incompatible broker.
    InvalidRequest = 42, false, "INVALID_REQUEST";
    /// The broker's message format version cannot serve the request.
    UnsupportedForMessageFormat = 43, false, "UNSUPPORTED_FOR_MESSAGE_FORMAT";
    /// The request violates a policy configured on the broker.
    PolicyViolation = 44, false, "POLICY_VIOLATION";
    /// The broker got a sequence number other than the one it expected next.
    OutOfOrderSequenceNumber = 45, false, "OUT_OF_ORDER_SEQUENCE_NUMBER";
    /// The broker already holds a batch with this sequence number.
    DuplicateSequenceNumber = 46, false, "DUPLICATE_SEQUENCE_NUMBER";
    /// The producer epoch is older than the current one for this producer.
    InvalidProducerEpoch = 47, false, "INVALID_PRODUCER_EPOCH";
    /// The operation is not allowed in the transaction's current state.
    InvalidTxnState = 48, false, "INVALID_TXN_STATE";
    /// The producer id is not assigned to this transactional id.
    InvalidProducerIdMapping = 49, false, "INVALID_PRODUCER_ID_MAPPING";
    /// The transaction timeout exceeds the broker's maximum.
    InvalidTransactionTimeout = 50, false, "INVALID_TRANSACTION_TIMEOUT";
    /// Another operation on the same transactional id is still in progress.
    ConcurrentTransactions = 51, true, "CONCURRENT_TRANSACTIONS";
    /// A newer transaction coordinator has fenced this one.
    TransactionCoordinatorFenced = 52, false, "TRANSACTION_COORDINATOR_FENCED";
    /// The client is not authorized to use this transactional id.
    TransactionalIdAuthorizationFailed = 53, false, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED";
    /// Security features are disabled on the broker.
    SecurityDisabled = 54, false, "SECURITY_DISABLED";
    /// The broker did not attempt the operation (an earlier step failed).
    OperationNotAttempted = 55, false, "OPERATION_NOT_ATTEMPTED";
    /// A disk or log directory error occurred on the broker.
    KafkaStorageError = 56, true, "KAFKA_STORAGE_ERROR";
    /// The requested log directory does not exist on the broker.
    LogDirNotFound = 57, false, "LOG_DIR_NOT_FOUND";
    /// SASL authentication failed.
    SaslAuthenticationFailed = 58, false, "SASL_AUTHENTICATION_FAILED";
    /// The broker has no state for this producer id.
    UnknownProducerId = 59, false, "UNKNOWN_PRODUCER_ID";
    /// A partition reassignment is already in progress.
    ReassignmentInProgress = 60, false, "REASSIGNMENT_IN_PROGRESS";
    /// Delegation tokens are disabled.
    DelegationTokenAuthDisabled = 61, false, "DELEGATION_TOKEN_AUTH_DISABLED";
    /// The delegation token was not found.
    DelegationTokenNotFound = 62, false, "DELEGATION_TOKEN_NOT_FOUND";
    /// The principal does not own or renew the delegation token.
    DelegationTokenOwnerMismatch = 63, false, "DELEGATION_TOKEN_OWNER_MISMATCH";
    /// Delegation token requests are not allowed over this authentication.
    DelegationTokenRequestNotAllowed = 64, false, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED";
    /// The client is not authorized for the delegation token request.
    DelegationTokenAuthorizationFailed = 65, false, "DELEGATION_TOKEN_AUTHORIZATION_FAILED";
    /// The delegation token has expired.
    DelegationTokenExpired = 66, false, "DELEGATION_TOKEN_EXPIRED";
    /// The principal type is not supported.
    InvalidPrincipalType = 67, false, "INVALID_PRINCIPAL_TYPE";
    /// The group cannot be deleted because it is not empty.
    NonEmptyGroup = 68, false, "NON_EMPTY_GROUP";
    /// The group id does not exist.
    GroupIdNotFound = 69, false, "GROUP_ID_NOT_FOUND";
    /// The fetch session id is not known to the broker.
    FetchSessionIdNotFound = 70, true, "FETCH_SESSION_ID_NOT_FOUND";
    /// The fetch session epoch is not the expected one.
    InvalidFetchSessionEpoch = 71, true, "INVALID_FETCH_SESSION_EPOCH";
    /// The leader has no endpoint for the listener the request came in on.
    ListenerNotFound = 72, true, "LISTENER_NOT_FOUND";
    /// Topic deletion is disabled.
    TopicDeletionDisabled = 73, false, "TOPIC_DELETION_DISABLED";
    /// The request's leader epoch is older than the broker's.
    FencedLeaderEpoch = 74, true, "FENCED_LEADER_EPOCH";
    /// The request's leader epoch is newer than the broker knows.
    UnknownLeaderEpoch = 75, true, "UNKNOWN_LEADER_EPOCH";
    /// The requesting client does not support the topic's compression type.
    UnsupportedCompressionType = 76, false, "UNSUPPORTED_COMPRESSION_TYPE";
    /// The broker epoch is stale.
    StaleBrokerEpoch = 77, false, "STALE_BROKER_EPOCH";
    /// The leader's high watermark has not caught up; offset unavailable yet.
    OffsetNotAvailable = 78, true, "OFFSET_NOT_AVAILABLE";
    /// The group requires a member id; rejoin with the one given.
    MemberIdRequired = 79, false, "MEMBER_ID_REQUIRED";
    /// The preferred leader was not available for election.
    PreferredLeaderNotAvailable = 80, true, "PREFERRED_LEADER_NOT_AVAILABLE";
    /// The group has reached its maximum size.
    GroupMaxSizeReached = 81, false, "GROUP_MAX_SIZE_REACHED";
    /// A newer member with the same group.instance.id fenced this one.
    FencedInstanceId = 82, false, "FENCED_INSTANCE_ID";
    /// No eligible replica is available to become leader.
    EligibleLeadersNotAvailable = 83, true, "ELIGIBLE_LEADERS_NOT_AVAILABLE";
    /// No leader election was needed.
    ElectionNotNeeded = 84, true, "ELECTION_NOT_NEEDED";
    /// No partition reassignment is in progress.
    NoReassignmentInProgress = 85, false, "NO_REASSIGNMENT_IN_PROGRESS";
    /// The group still subscribes to the topic, so the offsets cannot go.
    GroupSubscribedToTopic = 86, false, "GROUP_SUBSCRIBED_TO_TOPIC";
    /// The broker rejected records in the batch as invalid.
    InvalidRecord = 87, false, "INVALID_RECORD";
    /// Unstable offsets exist for the partition; retry later.
    UnstableOffsetCommit = 88, true, "UNSTABLE_OFFSET_COMMIT";
    /// The request exceeded a throttling quota.
    ThrottlingQuotaExceeded = 89, true, "THROTTLING_QUOTA_EXCEEDED";
    /// A newer producer with the same transactional id fenced this one.
    ProducerFenced = 90, false, "PRODUCER_FENCED";
    /// The requested resource does not exist.
    ResourceNotFound = 91, false, "RESOURCE_NOT_FOUND";
    /// The request names the same resource more than once.
    DuplicateResource = 92, false, "DUPLICATE_RESOURCE";
    /// The credential does not meet the broker's requirements.
    UnacceptableCredential = 93, false, "UNACCEPTABLE_CREDENTIAL";
    /// The sender or recipient of a voter request is not an expected voter.
    InconsistentVoterSet = 94, false, "INCONSISTENT_VOTER_SET";
    /// The update version is invalid.
    InvalidUpdateVersion = 95, false, "INVALID_UPDATE_VERSION";
    /// Updating the finalized features failed on the broker.
    FeatureUpdateFailed = 96, false, "FEATURE_UPDATE_FAILED";
    /// The forwarded request's principal could not be deserialized.
    PrincipalDeserializationFailure = 97, false, "PRINCIPAL_DESERIALIZATION_FAILURE";
    /// The requested snapshot was not found.
    SnapshotNotFound = 98, false, "SNAPSHOT_NOT_FOUND";
    /// The requested snapshot position is out of range.
    PositionOutOfRange = 99, false, "POSITION_OUT_OF_RANGE";
    /// The broker does not host this topic id.
    UnknownTopicId = 100, true, "UNKNOWN_TOPIC_ID";
    /// The broker id is already registered.
    DuplicateBrokerRegistration = 101, false, "DUPLICATE_BROKER_REGISTRATION";
    /// The broker id is not registered.
    BrokerIdNotRegistered = 102, false, "BROKER_ID_NOT_REGISTERED";
    /// The topic id in the request does not match the log's.
    InconsistentTopicId = 103, true, "INCONSISTENT_TOPIC_ID";
    /// The cluster id in the request does not match the server's.
    InconsistentClusterId = 104, false, "INCONSISTENT_CLUSTER_ID";
    /// The transactional id was not found.
    TransactionalIdNotFound = 105, false, "TRANSACTIONAL_ID_NOT_FOUND";
    /// The fetch session used topic ids inconsistently.
    FetchSessionTopicIdError = 106, true, "FETCH_SESSION_TOPIC_ID_ERROR";
    /// The proposed ISR contains an ineligible replica.
    IneligibleReplica = 107, false, "INELIGIBLE_REPLICA";
    /// The ISR change was applied, but the leader has since changed.
    NewLeaderElected = 108, false, "NEW_LEADER_ELECTED";
    /// The requested offset has moved to tiered storage.
    OffsetMovedToTieredStorage = 109, false, "OFFSET_MOVED_TO_TIERED_STORAGE";
    /// The group coordinator fenced this member's epoch; it must rejoin.
    FencedMemberEpoch = 110, false, "FENCED_MEMBER_EPOCH";
    /// Another member still uses this group.instance.id.
    UnreleasedInstanceId = 111, false, "UNRELEASED_INSTANCE_ID";
    /// The group does not support the assignor or its version.
    UnsupportedAssignor = 112, false, "UNSUPPORTED_ASSIGNOR";
    /// The member epoch is stale; retry with the updated one.
    StaleMemberEpoch = 113, false, "STALE_MEMBER_EPOCH";
    /// The request reached an endpoint of the wrong type.
    MismatchedEndpointType = 114, false, "MISMATCHED_ENDPOINT_TYPE";
    /// This endpoint type is not supported yet.
    UnsupportedEndpointType = 115, false, "UNSUPPORTED_ENDPOINT_TYPE";
    /// The controller id is not known.
    UnknownControllerId = 116, false, "UNKNOWN_CONTROLLER_ID";
    /// The telemetry subscription id is invalid or outdated.
    UnknownSubscriptionId = 117, false, "UNKNOWN_SUBSCRIPTION_ID";
    /// The telemetry push is larger than the broker accepts.
    TelemetryTooLarge = 118, false, "TELEMETRY_TOO_LARGE";
    /// The controller judged the broker registration invalid.
    InvalidRegistration = 119, false, "INVALID_REGISTRATION";
    /// The transaction failed on the broker; abort it to keep going.
    TransactionAbortable = 120, false, "TRANSACTION_ABORTABLE";
    /// The record's state does not allow the acknowledgement.
    InvalidRecordState = 121, false, "INVALID_RECORD_STATE";
    /// The share session was not found.
    ShareSessionNotFound = 122, true, "SHARE_SESSION_NOT_FOUND";
    /// The share session epoch is invalid.
    InvalidShareSessionEpoch = 123, true, "INVALID_SHARE_SESSION_EPOCH";
    /// The share-group state epoch did not match.
    FencedStateEpoch = 124, false, "FENCED_STATE_EPOCH";
    /// The voter key does not match the receiving replica's key.
    InvalidVoterKey = 125, false, "INVALID_VOTER_KEY";
    /// The voter is already in the voter set.
    DuplicateVoter = 126, false, "DUPLICATE_VOTER";
    /// The voter is not in the voter set.
    VoterNotFound = 127, false, "VOTER_NOT_FOUND";
    /// The regular expression is invalid.
    InvalidRegularExpression = 128, false, "INVALID_REGULAR_EXPRESSION";
    /// The client's metadata is stale; it should rebootstrap.
    RebootstrapRequired = 129, false, "REBOOTSTRAP_REQUIRED";
    /// The streams topology supplied is invalid.
    StreamsInvalidTopology = 130, false, "STREAMS_INVALID_TOPOLOGY";
    /// The streams topology epoch supplied is invalid.
    StreamsInvalidTopologyEpoch = 131, false, "STREAMS_INVALID_TOPOLOGY_EPOCH";
    /// The streams topology epoch supplied is outdated.
    StreamsTopologyFenced = 132, false, "STREAMS_TOPOLOGY_FENCED";
    /// The broker's limit on share sessions has been reached.
    ShareSessionLimitReached = 133, true, "SHARE_SESSION_LIMIT_REACHED";
    /// The group could not be deleted.
    GroupDeletionFailed = 134, false, "GROUP_DELETION_FAILED";
    /// The streams topology description update failed.
    StreamsTopologyDescriptionUpdateFailed = 135, false, "STREAMS_TOPOLOGY_DESCRIPTION_UPDATE_FAILED";
}

impl fmt::Display for ErrorCode {
    /// Kafka's name followed by the numeric code, e.g. `NOT_LEADER_OR_FOLLOWER (6)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's SCREAMING_CASE name turned into the UpperCamelCase variant name.
    fn camel(name: &str) -> String {
        name.split('_')
            .map(|w| {
                let lower = w.to_ascii_lowercase();
                let mut chars = lower.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                    None => String::new(),
                }
            })
            .collect()
    }

    #[test]
    fn table_is_complete_from_minus_one_to_highest() {
        let codes: Vec<i16> = ErrorCode::TABLE.iter().map(|c| c.code()).collect();
        let expected: Vec<i16> = (-1..=135).collect();
        assert_eq!(codes, expected);
    }

    #[test]
    fn every_table_code_round_trips_and_has_a_distinct_name() {
        let mut names = std::collections::HashSet::new();
        for &c in ErrorCode::TABLE {
            assert_eq!(ErrorCode::from_code(c.code()), c);
            assert!(!matches!(
                ErrorCode::from_code(c.code()),
                ErrorCode::Unknown(_)
            ));
            assert!(names.insert(c.name()), "duplicate name {}", c.name());
            assert_eq!(format!("{c:?}"), camel(c.name()), "variant/name mismatch");
            assert_eq!(c.to_string(), format!("{} ({})", c.name(), c.code()));
        }
    }

    #[test]
    fn unknown_codes_round_trip() {
        for c in [-42, -2, 136, 1000, i16::MAX, i16::MIN] {
            let e = ErrorCode::from_code(c);
            assert_eq!(e, ErrorCode::Unknown(c));
            assert_eq!(e.code(), c);
            assert_eq!(e.name(), "UNKNOWN");
            assert!(!e.is_retriable());
        }
        assert_eq!(ErrorCode::Unknown(500).to_string(), "UNKNOWN (500)");
    }

    #[test]
    fn producer_relevant_codes_match_kafka() {
        use ErrorCode as E;
        let cases = [
            (E::UnknownServerError, -1, "UNKNOWN_SERVER_ERROR", false),
            (E::None, 0, "NONE", false),
            (E::CorruptMessage, 2, "CORRUPT_MESSAGE", true),
            (
                E::UnknownTopicOrPartition,
                3,
                "UNKNOWN_TOPIC_OR_PARTITION",
                true,
            ),
            (E::LeaderNotAvailable, 5, "LEADER_NOT_AVAILABLE", true),
            (E::NotLeaderOrFollower, 6, "NOT_LEADER_OR_FOLLOWER", true),
            (E::RequestTimedOut, 7, "REQUEST_TIMED_OUT", true),
            (E::BrokerNotAvailable, 8, "BROKER_NOT_AVAILABLE", false),
            (E::MessageTooLarge, 10, "MESSAGE_TOO_LARGE", false),
            (E::NetworkException, 13, "NETWORK_EXCEPTION", true),
            (
                E::InvalidTopicException,
                17,
                "INVALID_TOPIC_EXCEPTION",
                false,
            ),
            (E::RecordListTooLarge, 18, "RECORD_LIST_TOO_LARGE", false),
            (E::NotEnoughReplicas, 19, "NOT_ENOUGH_REPLICAS", true),
            (
                E::NotEnoughReplicasAfterAppend,
                20,
                "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
                true,
            ),
            (E::InvalidRequiredAcks, 21, "INVALID_REQUIRED_ACKS", false),
            (
                E::TopicAuthorizationFailed,
                29,
                "TOPIC_AUTHORIZATION_FAILED",
                false,
            ),
            (
                E::ClusterAuthorizationFailed,
                31,
                "CLUSTER_AUTHORIZATION_FAILED",
                false,
            ),
            (E::InvalidTimestamp, 32, "INVALID_TIMESTAMP", false),
            (E::UnsupportedVersion, 35, "UNSUPPORTED_VERSION", false),
            (
                E::OutOfOrderSequenceNumber,
                45,
                "OUT_OF_ORDER_SEQUENCE_NUMBER",
                false,
            ),
            (
                E::DuplicateSequenceNumber,
                46,
                "DUPLICATE_SEQUENCE_NUMBER",
                false,
            ),
            (E::InvalidProducerEpoch, 47, "INVALID_PRODUCER_EPOCH", false),
            (
                E::ConcurrentTransactions,
                51,
                "CONCURRENT_TRANSACTIONS",
                true,
            ),
            (E::KafkaStorageError, 56, "KAFKA_STORAGE_ERROR", true),
            (E::UnknownProducerId, 59, "UNKNOWN_PRODUCER_ID", false),
            (E::FencedLeaderEpoch, 74, "FENCED_LEADER_EPOCH", true),
            (E::UnknownLeaderEpoch, 75, "UNKNOWN_LEADER_EPOCH", true),
            (
                E::UnsupportedCompressionType,
                76,
                "UNSUPPORTED_COMPRESSION_TYPE",
                false,
            ),
            (E::InvalidRecord, 87, "INVALID_RECORD", false),
            (
                E::ThrottlingQuotaExceeded,
                89,
                "THROTTLING_QUOTA_EXCEEDED",
                true,
            ),
            (E::ProducerFenced, 90, "PRODUCER_FENCED", false),
            (E::UnknownTopicId, 100, "UNKNOWN_TOPIC_ID", true),
            (E::TransactionAbortable, 120, "TRANSACTION_ABORTABLE", false),
            (E::RebootstrapRequired, 129, "REBOOTSTRAP_REQUIRED", false),
            (
                E::ShareSessionLimitReached,
                133,
                "SHARE_SESSION_LIMIT_REACHED",
                true,
            ),
        ];
        for (code, num, name, retriable) in cases {
            assert_eq!(code.code(), num, "{name}");
            assert_eq!(ErrorCode::from_code(num), code, "{name}");
            assert_eq!(code.name(), name);
            assert_eq!(code.is_retriable(), retriable, "{name}");
        }
        assert_eq!(
            E::NotLeaderOrFollower.to_string(),
            "NOT_LEADER_OR_FOLLOWER (6)"
        );
        assert_eq!(
            E::UnknownServerError.to_string(),
            "UNKNOWN_SERVER_ERROR (-1)"
        );
    }

    #[test]
    fn classifies_retriable_errors_like_kafka() {
        assert!(Error::broker(ErrorCode::RequestTimedOut).is_retriable());
        assert!(!Error::broker(ErrorCode::MessageTooLarge).is_retriable());
        assert!(!Error::Closed.is_retriable());
        let e = Error::Broker {
            code: ErrorCode::NotEnoughReplicas,
            message: Some("isr too small".into()),
        };
        assert_eq!(
            e.to_string(),
            "broker error NOT_ENOUGH_REPLICAS (19): isr too small"
        );
    }
}
