#![no_main]
//! Fuzz target `produce_response`: see [`kafka_producer_fuzz::produce_response`].

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kafka_producer_fuzz::produce_response(data));
