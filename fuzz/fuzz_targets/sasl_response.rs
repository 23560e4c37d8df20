#![no_main]
//! Fuzz target `sasl_response`: see [`kafka_producer_fuzz::sasl_response`].

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kafka_producer_fuzz::sasl_response(data));
