//! The domain: resources, identifiers and the parsing of everything a client sends.

pub mod body;
pub mod clear;
pub mod conversation;
pub mod conversation_update;
pub mod delegation;
pub mod etag;
pub mod field_mask;
pub mod filter;
pub mod ids;
pub mod mask_text;
pub mod message;
pub mod message_query;
pub mod message_update;
pub mod page_token;
pub mod rendering;
pub mod seed_fields;
pub mod time;
