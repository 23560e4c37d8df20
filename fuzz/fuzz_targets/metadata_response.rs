#![no_main]
//! Fuzz target `metadata_response`: see [`kafka_producer_fuzz::metadata_response`].

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kafka_producer_fuzz::metadata_response(data));
