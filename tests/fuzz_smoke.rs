//! The fuzz targets' bodies on stable Rust: every target of `fuzz/` gets deterministic
//! pseudo-random inputs and mutations of valid encodings, so `cargo test` runs the code the
//! fuzzer runs (no panic, and each body's own round-trip checks) without nightly or
//! cargo-fuzz. `scripts/fuzz` runs the same bodies coverage-guided.
//!
//! The bodies live in `fuzz/src/lib.rs`, included here as a module, so there is one copy.

#[path = "../fuzz/src/lib.rs"]
mod bodies;

use kafka_producer::protocol::api_versions::{ApiVersion, ApiVersionsResponse};
use kafka_producer::protocol::header::ResponseHeader;
use kafka_producer::protocol::init_producer_id::InitProducerIdResponse;
use kafka_producer::protocol::metadata::{
    MetadataBroker, MetadataPartition, MetadataResponse, MetadataTopic,
};
use kafka_producer::protocol::produce::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use kafka_producer::protocol::sasl_authenticate::SaslAuthenticateResponse;
use kafka_producer::protocol::sasl_handshake::SaslHandshakeResponse;
use kafka_producer::protocol::{decode_any_response, response_header_version, ApiKey};
use kafka_producer::record_batch::{ProducerState, RecordBatch, RecordBatchBuilder};
use kafka_producer::{Compression, Header};

/// Random inputs per target, and mutations per valid seed.
const RANDOM_INPUTS: usize = 4_000;
const MUTATIONS_PER_SEED: usize = 1_500;

/// splitmix64: deterministic, so that a failure reproduces exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// One to four random edits of `seed`: bit flips, edge values over lengths and counts,
/// insertions, deletions, truncation.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    const EDGES: [[u8; 4]; 5] = [
        [0x7f, 0xff, 0xff, 0xff],
        [0xff, 0xff, 0xff, 0xff],
        [0x80, 0x00, 0x00, 0x00],
        [0xff, 0xff, 0xff, 0x0f],
        [0x00, 0x00, 0x00, 0x00],
    ];
    let mut out = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let pos = rng.below(out.len() + 1);
        match rng.below(5) {
            0 if pos < out.len() => out[pos] ^= 1 << rng.below(8),
            1 => {
                let edge = EDGES[rng.below(EDGES.len())];
                for (i, b) in edge.iter().take(1 + rng.below(4)).enumerate() {
                    if let Some(o) = out.get_mut(pos + i) {
                        *o = *b;
                    }
                }
            }
            2 => out.insert(pos, rng.next() as u8),
            3 if pos < out.len() => {
                out.remove(pos);
            }
            _ => out.truncate(pos),
        }
    }
    out
}

/// Feeds `body` every seed, mutations of each, and random inputs; returns the count.
///
/// With `KAFKA_PRODUCER_FUZZ_SEEDS=<dir>` set, also writes the seeds to `<dir>/<target>/` as
/// a starting corpus for the fuzzer (`fuzz/seeds/` was made so).
fn run(target: &str, body: fn(&[u8]), seeds: &[Vec<u8>], rng: &mut Rng) -> usize {
    if let Some(dir) = std::env::var_os("KAFKA_PRODUCER_FUZZ_SEEDS") {
        let dir = std::path::Path::new(&dir).join(target);
        std::fs::create_dir_all(&dir).expect("creating the seed directory");
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), seed).expect("writing a seed");
        }
    }
    let mut fed = 0;
    for seed in seeds {
        body(seed);
        for _ in 0..MUTATIONS_PER_SEED {
            body(&mutate(rng, seed));
        }
        fed += 1 + MUTATIONS_PER_SEED;
    }
    for _ in 0..RANDOM_INPUTS {
        let len = rng.below(160);
        body(&rng.bytes(len));
    }
    fed + RANDOM_INPUTS
}

/// `[version byte] + frame` seeds for an API: the byte the body turns into `version`.
fn response_seeds(
    key: ApiKey,
    versions: std::ops::RangeInclusive<i16>,
    first_flexible: i16,
    body: impl Fn(i16, &mut Vec<u8>),
) -> Vec<Vec<u8>> {
    let min = *versions.start();
    versions
        .map(|v| {
            let mut seed = vec![(v - min) as u8];
            let header_version = response_header_version(key, v >= first_flexible);
            ResponseHeader { correlation_id: 42 }.encode(header_version, &mut seed);
            body(v, &mut seed);
            assert!(
                decode_any_response(key, v, &seed[1..]).is_ok(),
                "the {key:?} v{v} seed must decode"
            );
            seed
        })
        .collect()
}

#[test]
fn the_api_versions_target_survives_random_and_mutated_frames() {
    let body = ApiVersionsResponse {
        error_code: 0,
        api_keys: vec![ApiVersion {
            api_key: 0,
            min_version: 3,
            max_version: 11,
        }],
        throttle_time_ms: 7,
        ..ApiVersionsResponse::default()
    };
    let seeds = response_seeds(ApiKey::API_VERSIONS, 0..=3, 3, |v, out| {
        body.encode_body(v, out)
    });
    let fed = run(
        "api_versions_response",
        bodies::api_versions_response,
        &seeds,
        &mut Rng(1),
    );
    assert!(fed > 10_000);
}

#[test]
fn the_metadata_target_survives_random_and_mutated_frames() {
    let body = MetadataResponse {
        throttle_time_ms: 1,
        brokers: vec![MetadataBroker {
            node_id: 1,
            host: "b1".into(),
            port: 9092,
            rack: Some("r1".into()),
        }],
        cluster_id: Some("c".into()),
        controller_id: 1,
        topics: vec![MetadataTopic {
            error_code: 0,
            name: Some("t".into()),
            topic_id: [7; 16],
            is_internal: false,
            partitions: vec![MetadataPartition {
                error_code: 0,
                partition_index: 0,
                leader_id: 1,
                leader_epoch: 3,
                replica_nodes: vec![1, 2],
                isr_nodes: vec![1],
                offline_replicas: vec![2],
            }],
            topic_authorized_operations: 0,
        }],
        cluster_authorized_operations: 0,
    };
    let seeds = response_seeds(ApiKey::METADATA, 1..=12, 9, |v, out| {
        body.encode_body(v, out)
    });
    let fed = run(
        "metadata_response",
        bodies::metadata_response,
        &seeds,
        &mut Rng(2),
    );
    assert!(fed > 10_000);
}

#[test]
fn the_produce_target_survives_random_and_mutated_frames() {
    let body = ProduceResponse {
        responses: vec![TopicProduceResponse {
            name: "t".into(),
            partitions: vec![PartitionProduceResponse {
                index: 0,
                error_code: 6,
                base_offset: 5,
                log_append_time_ms: -1,
                log_start_offset: 0,
                record_errors: Vec::new(),
                error_message: Some("moved".into()),
                current_leader: Some(LeaderIdAndEpoch {
                    leader_id: 2,
                    leader_epoch: 4,
                }),
            }],
        }],
        throttle_time_ms: 0,
        node_endpoints: vec![NodeEndpoint {
            node_id: 2,
            host: "b2".into(),
            port: 9093,
            rack: None,
        }],
    };
    let seeds = response_seeds(ApiKey::PRODUCE, 3..=11, 9, |v, out| {
        body.encode_body(v, out)
    });
    let fed = run(
        "produce_response",
        bodies::produce_response,
        &seeds,
        &mut Rng(3),
    );
    assert!(fed > 10_000);
}

#[test]
fn the_init_producer_id_target_survives_random_and_mutated_frames() {
    let body = InitProducerIdResponse {
        throttle_time_ms: 0,
        error_code: 0,
        producer_id: 1_000,
        producer_epoch: 2,
    };
    let seeds = response_seeds(ApiKey::INIT_PRODUCER_ID, 0..=4, 2, |v, out| {
        body.encode_body(v, out)
    });
    let fed = run(
        "init_producer_id_response",
        bodies::init_producer_id_response,
        &seeds,
        &mut Rng(4),
    );
    assert!(fed > 10_000);
}

#[test]
fn the_sasl_target_survives_random_and_mutated_frames() {
    let handshake = SaslHandshakeResponse {
        error_code: 33,
        mechanisms: vec!["PLAIN".into(), "SCRAM-SHA-512".into()],
    };
    let authenticate = SaslAuthenticateResponse {
        error_code: 0,
        error_message: None,
        auth_bytes: b"r=nonce,s=c2FsdA==,i=4096".to_vec(),
        session_lifetime_ms: 5_000,
    };
    // The target's first byte: even picks SaslHandshake, odd SaslAuthenticate; half of it
    // picks the version.
    let mut seeds = Vec::new();
    for seed in response_seeds(ApiKey::SASL_HANDSHAKE, 0..=1, i16::MAX, |v, out| {
        handshake.encode_body(v, out)
    }) {
        let mut s = seed;
        s[0] *= 2;
        seeds.push(s);
    }
    for seed in response_seeds(ApiKey::SASL_AUTHENTICATE, 0..=2, 2, |v, out| {
        authenticate.encode_body(v, out)
    }) {
        let mut s = seed;
        s[0] = s[0] * 2 + 1;
        seeds.push(s);
    }
    let fed = run("sasl_response", bodies::sasl_response, &seeds, &mut Rng(9));
    assert!(fed > 10_000);
}

#[test]
fn the_response_header_target_survives_random_and_mutated_headers() {
    let seeds: Vec<Vec<u8>> = (0..2)
        .map(|v| {
            let mut seed = vec![v as u8];
            ResponseHeader { correlation_id: 9 }.encode(v, &mut seed);
            seed
        })
        .collect();
    let fed = run(
        "response_header",
        bodies::response_header,
        &seeds,
        &mut Rng(5),
    );
    assert!(fed > 5_000);
}

#[test]
fn the_frame_reader_target_survives_random_and_mutated_streams() {
    // Largest frame 0x10 << 8 bytes, reads of 1, 97, interrupted and 194 bytes, then three
    // frames back to back.
    let mut seed = vec![0x10, 1, 1, 0, 2];
    for len in [4usize, 10, 300] {
        seed.extend_from_slice(&(len as i32).to_be_bytes());
        seed.extend((0..len).map(|i| i as u8));
    }
    let fed = run("frame_reader", bodies::frame_reader, &[seed], &mut Rng(6));
    assert!(fed > 5_000);
}

/// A batch of every codec, the seeds of the batch target's three modes.
fn batch_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut b = RecordBatchBuilder::new(codec, None);
        for i in 0..3u8 {
            b.append(
                1_000 + i64::from(i),
                Some(&[i; 2]),
                Some(&[b'v'; 30]),
                &[Header::new("h", vec![i])],
            );
        }
        b.append(900, None, None, &[]);
        let batch = b.build(ProducerState::NONE).to_vec();
        let (parsed, _) = RecordBatch::parse(&batch).expect("the seed parses");
        assert_eq!(parsed.records().expect("the seed decodes").len(), 4);
        // Mode 0: the batch as it is.
        seeds.push([&[0u8][..], &batch].concat());
        // Mode 1: attributes, record count, a small-count flag, base timestamp, records.
        let mut sealed = vec![1u8, 0, codec.codec_id(), 0, 0, 0, 4, 0];
        sealed.extend_from_slice(&1_000i32.to_be_bytes());
        sealed.extend_from_slice(parsed.records_section());
        seeds.push(sealed);
    }
    // Mode 2: records described by the bytes.
    seeds.push([&[2u8][..], b"\x8bkey\x05value\x02ab\x01xyzk\x00\xff"].concat());
    seeds
}

#[test]
fn the_record_batch_target_survives_random_and_mutated_batches() {
    let fed = run(
        "record_batch",
        bodies::record_batch,
        &batch_seeds(),
        &mut Rng(7),
    );
    assert!(fed > 10_000);
}
