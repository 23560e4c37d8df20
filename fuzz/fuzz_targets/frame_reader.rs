#![no_main]
//! Fuzz target `frame_reader`: see [`kafka_producer_fuzz::frame_reader`].

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kafka_producer_fuzz::frame_reader(data));
