//! The table's schema, as `template.yaml` declares it, for local runs and tests; and the layout
//! marker that says which layout of keys a table holds.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};

use crate::store::item::{self, attr};

/// The sparse index that lists an owner's conversations by createTime.
pub const OWNER_INDEX: &str = "by-owner";
/// The sparse index that lists an owner's conversations by lastUsedTime (recent activity).
pub const ACTIVITY_INDEX: &str = "by-activity";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Creates the table (on-demand, keys, both indexes, TTL, a stream of old and new images for the
/// purger) unless it exists, and marks a new table with this version's layout. Returns whether
/// it created it.
pub async fn ensure_table(client: &Client, table: &str) -> Result<bool, BoxError> {
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
    let index = |name: &str, pk: &str, sk: &str| -> Result<GlobalSecondaryIndex, BoxError> {
        Ok(GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(pk, KeyType::Hash)?)
            .key_schema(key(sk, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()?)
    };
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(attr::PK, KeyType::Hash)?)
        .key_schema(key(attr::SK, KeyType::Range)?)
        .global_secondary_indexes(index(OWNER_INDEX, attr::GSI_PK, attr::GSI_SK)?)
        .global_secondary_indexes(index(ACTIVITY_INDEX, attr::GSI2_PK, attr::GSI2_SK)?)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()?,
        );
    for name in [
        attr::PK,
        attr::SK,
        attr::GSI_PK,
        attr::GSI_SK,
        attr::GSI2_PK,
        attr::GSI2_SK,
    ] {
        request = request.attribute_definitions(string(name)?);
    }
    match request.send().await {
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
    mark_layout(client, table).await?;
    Ok(true)
}

/// The key of the layout marker item.
pub fn layout_key() -> item::Item {
    item::Item::from([
        (attr::PK.to_owned(), item::s(item::LAYOUT_KEY)),
        (attr::SK.to_owned(), item::s(item::CONVERSATION_SK)),
    ])
}

/// Writes the marker: the table holds this version's layout ([`item::LAYOUT`]).
pub async fn mark_layout(client: &Client, table: &str) -> Result<(), BoxError> {
    let mut marker = layout_key();
    marker.insert(attr::LAYOUT.into(), item::n(item::LAYOUT));
    client
        .put_item()
        .table_name(table)
        .set_item(Some(marker))
        .send()
        .await?;
    Ok(())
}

/// The layout a table's marker names (`None`: no marker, a table written before layouts were
/// marked, i.e. layout 1 — or an empty table).
pub async fn layout(client: &Client, table: &str) -> Result<Option<i64>, BoxError> {
    let out = client
        .get_item()
        .table_name(table)
        .set_key(Some(layout_key()))
        .consistent_read(true)
        .send()
        .await?;
    Ok(out
        .item
        .and_then(|i| i.get(attr::LAYOUT).and_then(|v| v.as_n().ok()).cloned())
        .and_then(|n| n.parse().ok()))
}

/// Whether the table holds any item at all (one `Scan` of one item).
pub async fn is_empty(client: &Client, table: &str) -> Result<bool, BoxError> {
    let out = client.scan().table_name(table).limit(1).send().await?;
    Ok(out.count() == 0 && out.last_evaluated_key().is_none())
}
