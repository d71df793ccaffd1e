//! Request bodies: any bytes (deep nesting, huge numbers, invalid UTF-8, NUL, duplicate keys).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| conversations_fuzz::body(data, None));
