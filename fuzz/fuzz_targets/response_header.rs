#![no_main]
//! Fuzz target `response_header`: see [`kafka_producer_fuzz::response_header`].

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kafka_producer_fuzz::response_header(data));
