#![no_main]
//! Fuzz target `init_producer_id_response`: see [`kafka_producer_fuzz::init_producer_id_response`].

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kafka_producer_fuzz::init_producer_id_response(data));
