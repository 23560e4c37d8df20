#![no_main]
//! Fuzz target `api_versions_response`: see [`kafka_producer_fuzz::api_versions_response`].

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kafka_producer_fuzz::api_versions_response(data));
