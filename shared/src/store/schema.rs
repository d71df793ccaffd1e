//! The table's schema, as `template.yaml` declares it, for local runs and tests.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};

use crate::store::item::attr;

/// The sparse index that lists an owner's conversations by createTime.
pub const OWNER_INDEX: &str = "by-owner";

/// Creates the table (on-demand, keys, index, TTL, a stream of old and new images for the
/// purger) unless it exists. Returns whether it created it.
pub async fn ensure_table(
    client: &Client,
    table: &str,
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let string = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let result = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(string(attr::PK)?)
        .attribute_definitions(string(attr::SK)?)
        .attribute_definitions(string(attr::GSI_PK)?)
        .attribute_definitions(string(attr::GSI_SK)?)
        .key_schema(key(attr::PK, KeyType::Hash)?)
        .key_schema(key(attr::SK, KeyType::Range)?)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(OWNER_INDEX)
                .key_schema(key(attr::GSI_PK, KeyType::Hash)?)
                .key_schema(key(attr::GSI_SK, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()?,
        )
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()?,
        )
        .send()
        .await;
    match result {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(attr::TTL)
                .build()?,
        )
        .send()
        .await?;
    Ok(true)
}
