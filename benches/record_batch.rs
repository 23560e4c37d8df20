//! Cost per record of encoding a ~16 KiB batch (`batch.size` default) of 100-byte records
//! with 10-byte keys and building it, uncompressed and with every codec.
//!
//! Values are drawn from a small vocabulary so that they compress roughly like real
//! payloads (text, JSON) rather than like noise or like a run of zeros.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_producer::record_batch::{ProducerState, RecordBatchBuilder};
use kafka_producer::Compression;

const BATCH_SIZE: usize = 16 * 1024;
const VALUE_LEN: usize = 100;
const KEY_LEN: usize = 10;
const POOL: usize = 1024;

/// Fixed-seed xorshift64*, so every run measures the same data.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// `POOL` (key, value) pairs: keys are decimal ids, values are words from a small vocabulary.
fn records() -> Vec<(Vec<u8>, Vec<u8>)> {
    const WORDS: [&str; 16] = [
        "order",
        "user",
        "id",
        "amount",
        "\"status\":",
        "paid",
        "shipped",
        "eur",
        "{",
        "}",
        "12.50",
        "true",
        "false",
        "sku-",
        "2024-05-01T",
        "null",
    ];
    let mut rng = XorShift(0x2545_f491);
    (0..POOL)
        .map(|i| {
            let key = format!("{:0width$}", i * 7919, width = KEY_LEN).into_bytes();
            let mut value = Vec::with_capacity(VALUE_LEN + 16);
            while value.len() < VALUE_LEN {
                value.extend_from_slice(WORDS[(rng.next() % 16) as usize].as_bytes());
                value.push(if (rng.next() & 3) == 0 { b',' } else { b' ' });
            }
            value.truncate(VALUE_LEN);
            (key[..KEY_LEN].to_vec(), value)
        })
        .collect()
}

/// Records that fit in one `BATCH_SIZE` batch.
fn records_per_batch(pool: &[(Vec<u8>, Vec<u8>)]) -> usize {
    let mut b = RecordBatchBuilder::new(Compression::None, None);
    let mut n = 0;
    while b.estimated_size() < BATCH_SIZE {
        let (k, v) = &pool[n % POOL];
        b.append(1_700_000_000_000 + n as i64, Some(k), Some(v), &[]);
        n += 1;
    }
    n - 1
}

fn append_and_build(c: &mut Criterion) {
    let pool = records();
    let n = records_per_batch(&pool);
    let mut group = c.benchmark_group("record_batch/append_and_build_16KiB");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(n as u64));
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    for codec in codecs.into_iter().filter(|c| c.is_available()) {
        let mut offset = 0;
        group.bench_function(BenchmarkId::from_parameter(codec.name()), |bench| {
            bench.iter(|| {
                let mut b = RecordBatchBuilder::with_capacity(codec, None, BATCH_SIZE);
                for i in 0..n {
                    let (k, v) = &pool[(offset + i) % POOL];
                    b.append(1_700_000_000_000 + i as i64, Some(k), Some(v), &[]);
                }
                offset += n;
                black_box(b.build(ProducerState::NONE))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, append_and_build);
criterion_main!(benches);
