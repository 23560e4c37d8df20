//! The values a transactional producer takes from its users: offsets to commit with a
//! transaction, and the consumer group they belong to.

/// An offset to commit for a partition through a transaction
/// ([`Producer::send_offsets_to_transaction`](crate::Producer::send_offsets_to_transaction)):
/// the position of the next record the consumer will read, with the leader epoch of the
/// last record read (when the consumer knows it) and free-form metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OffsetAndMetadata {
    offset: i64,
    leader_epoch: Option<i32>,
    metadata: Option<String>,
}

impl OffsetAndMetadata {
    /// The offset `offset` (the next record to read), without leader epoch or metadata.
    pub fn new(offset: i64) -> Self {
        OffsetAndMetadata {
            offset,
            leader_epoch: None,
            metadata: None,
        }
    }

    /// With the leader epoch of the last record consumed (lets the group coordinator detect
    /// a truncated log, KIP-320).
    pub fn with_leader_epoch(mut self, epoch: i32) -> Self {
        self.leader_epoch = Some(epoch);
        self
    }

    /// With free-form metadata stored next to the offset.
    pub fn with_metadata(mut self, metadata: impl Into<String>) -> Self {
        self.metadata = Some(metadata.into());
        self
    }

    /// The offset.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The leader epoch, if set.
    pub fn leader_epoch(&self) -> Option<i32> {
        self.leader_epoch
    }

    /// The metadata, if set.
    pub fn metadata(&self) -> Option<&str> {
        self.metadata.as_deref()
    }
}

/// The consumer group whose offsets a transaction commits, as the consumer knows it: group
/// id, generation, member id and static instance id. Any consumer can fill it (rdkafka's
/// `ConsumerGroupMetadata` exposes the same fields), so the group coordinator can refuse
/// offsets from a member that was fenced out of the group (a zombie consumer).
///
/// [`ConsumerGroupMetadata::new`] names the group only (generation -1, no member id), which
/// the coordinator accepts without a membership check, as Java's
/// `new ConsumerGroupMetadata(groupId)` does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsumerGroupMetadata {
    group_id: String,
    generation_id: i32,
    member_id: String,
    group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// The group `group_id`, with no generation (-1) and no member id.
    pub fn new(group_id: impl Into<String>) -> Self {
        ConsumerGroupMetadata {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }

    /// With the consumer's group generation and member id (from its last rebalance).
    pub fn with_generation(mut self, generation_id: i32, member_id: impl Into<String>) -> Self {
        self.generation_id = generation_id;
        self.member_id = member_id.into();
        self
    }

    /// With the consumer's static group instance id (`group.instance.id`).
    pub fn with_group_instance_id(mut self, id: impl Into<String>) -> Self {
        self.group_instance_id = Some(id.into());
        self
    }

    /// The group id.
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// The generation id, -1 when unknown.
    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    /// The member id, empty when unknown.
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The static group instance id, if any.
    pub fn group_instance_id(&self) -> Option<&str> {
        self.group_instance_id.as_deref()
    }
}
