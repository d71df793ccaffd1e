//! `filter` and `orderBy` of list and of list messages, `view` of get, and a message's `{order}`.
#![no_main]

use conversations::domain::conversation::View;
use conversations::domain::filter::{Filter, OrderBy};
use conversations::domain::message::{MAX_ORDER, parse_order};
use conversations::domain::message_query::{MessageFilter, MessageOrder};
use conversations_fuzz::{client_error, text};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = text(data);
    client_error(Filter::parse(&text));
    client_error(OrderBy::parse(&text));
    if let Some(filter) = client_error(MessageFilter::parse(&text)) {
        assert!(
            filter.from >= 1 && filter.to <= MAX_ORDER,
            "a range of real orders"
        );
        let _ = filter.canonical();
    }
    client_error(MessageOrder::parse(&text));
    client_error(View::parse(Some(&text)));
    if let Some(order) = parse_order(&text) {
        assert!((1..=MAX_ORDER).contains(&order));
    }
});
