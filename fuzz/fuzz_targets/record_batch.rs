#![no_main]
//! Fuzz target `record_batch`: see [`kafka_producer_fuzz::record_batch`].

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kafka_producer_fuzz::record_batch(data));
