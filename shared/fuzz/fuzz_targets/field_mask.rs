//! `updateMask` and `fields`: a mask, then (after the first newline) a PATCH body it applies to.
#![no_main]

use conversations::domain::conversation::OUTPUT_FIELDS;
use conversations::domain::field_mask::{Fields, UpdateMask};
use conversations_fuzz::{client_error, text};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let mask = text(&data[..split]);
    client_error(UpdateMask::parse(&mask));
    client_error(Fields::parse(Some(&mask), &OUTPUT_FIELDS));
    if split < data.len() {
        conversations_fuzz::body(&data[split + 1..], Some(&mask));
    }
});
