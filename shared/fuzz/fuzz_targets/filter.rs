//! `filter` and `orderBy` of the list methods.
#![no_main]

use conversations::domain::filter::{Filter, OrderBy};
use conversations_fuzz::{client_error, text};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = text(data);
    client_error(Filter::parse(&text));
    client_error(OrderBy::parse(&text));
});
