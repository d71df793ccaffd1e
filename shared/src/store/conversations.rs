//! A conversation's reads and writes: create, get (the full view with its latest messages),
//! update, delete, undelete, complete, and list by creation or by activity.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};

use super::expr::Expr;
use super::item::{self, Item, attr};
use super::seed_items;
use super::split;
use super::{
    Attempt, MAX_RETRIES, Store, backoff, classify, fitting, missing, not_found, rendered_len,
};
use crate::domain::body::MAX_METADATA_BYTES;
use crate::domain::conversation::{Conversation, Lifecycle, MAX_LABELS, NewConversation, Writable};
use crate::domain::etag::{Preconditions, Version};
use crate::domain::field_mask::{LabelsChange, MetadataChange, NestedWrite, Update};
use crate::domain::ids::{ConversationId, Owner, RequestId};
use crate::domain::message::Message;
use crate::domain::seed_fields::Object;
use crate::domain::time::{Duration, Timestamp};
use crate::error::ApiError;

/// The head's fields an update may write: what an update of the large fields sets on the head
/// besides its version (the rest of the head is the guard's and the counters').
const HEAD_FIELDS: [&str; 8] = [
    attr::DISPLAY_NAME,
    attr::CATEGORY,
    attr::LANGUAGE,
    attr::STAGE,
    attr::START,
    attr::EXPIRE,
    attr::EXPIRE_AT,
    attr::TTL,
];

/// A conversation as its stored form reads back (what a write of it answers: the same as a
/// read would).
fn stored(c: &Conversation) -> Result<Conversation, ApiError> {
    item::conversation_from(&item::conversation_item(c))
}

impl Store {
    /// Creates a conversation: its head and its body, in one transaction. A taken id is a 409
    /// unless it was taken by this same `requestId`, in which case the conversation it created
    /// is returned. The SDK's retry of this very transaction, its answer lost, is answered by
    /// DynamoDB from the transaction's `ClientRequestToken`, or else recognised by its head.
    pub async fn create(
        &self,
        owner: &Owner,
        id: &ConversationId,
        request_id: Option<RequestId>,
        new: NewConversation,
    ) -> Result<Conversation, ApiError> {
        let now = Timestamp::now();
        let conversation =
            new.into_conversation(id.clone(), owner.clone(), request_id.clone(), now);
        if !self.split_creates {
            return self.create_whole(conversation, request_id, now).await;
        }
        let (head, body) =
            split::split(item::conversation_item(&conversation), conversation.version);
        for attempt in 0..MAX_RETRIES {
            let mut e = Expr::new();
            let (pk, expire, purge) = (e.name(attr::PK), e.name(attr::EXPIRE), e.name(attr::PURGE));
            let now_v = e.value(item::n(now.micros()));
            // An id is taken while its conversation is visible: a create never overwrites one,
            // but an expired or purged conversation is missing although its items are still
            // there. Its messages stay behind the old incarnation's keys, its body is replaced
            // here; the purger deletes the rest.
            e.condition(format!(
                "attribute_not_exists({pk}) OR {expire} <= {now_v} OR {purge} <= {now_v}"
            ));
            let put_head = Put::builder()
                .table_name(&self.table)
                .set_item(Some(head.clone()))
                .set_condition_expression(e.condition_expression())
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map_err(ApiError::internal)?;
            let put_body = Put::builder()
                .table_name(&self.table)
                .set_item(Some(body.clone()))
                .build()
                .map_err(ApiError::internal)?;
            let items = vec![
                TransactWriteItem::builder().put(put_head).build(),
                TransactWriteItem::builder().put(put_body).build(),
            ];
            let Some(reasons) = self.transact(items).await? else {
                return Ok(conversation);
            };
            match reasons.into_iter().next() {
                Some((code, old)) if code == "ConditionalCheckFailed" => {
                    let taken = || ApiError::AlreadyExists(format!("{} already exists", id.name()));
                    let Some(old) = old else {
                        return Err(taken());
                    };
                    // A retry of the create that made it (AIP-155): its result, nothing new.
                    // Or this very transaction, applied with its answer lost and sent again
                    // without DynamoDB recognising its token: the head it put, to the
                    // microsecond.
                    let same_request =
                        request_id.is_some() && split::head_from(&old)?.request_id == request_id;
                    if !same_request && old != head {
                        return Err(taken());
                    }
                    return self.with_body(owner, id, old, None).await;
                }
                // A transaction racing on the same items: try again.
                _ => backoff(attempt).await,
            }
        }
        Err(ApiError::Aborted(format!(
            "{} is changing too fast; retry",
            id.name()
        )))
    }

    /// A create of layout 3: the whole conversation in one conditional `PutItem` (while
    /// functions of layout 3, which cannot read a head, may still serve the table).
    async fn create_whole(
        &self,
        conversation: Conversation,
        request_id: Option<RequestId>,
        now: Timestamp,
    ) -> Result<Conversation, ApiError> {
        let mut e = Expr::new();
        let (pk, expire, purge) = (e.name(attr::PK), e.name(attr::EXPIRE), e.name(attr::PURGE));
        let now_v = e.value(item::n(now.micros()));
        e.condition(format!(
            "attribute_not_exists({pk}) OR {expire} <= {now_v} OR {purge} <= {now_v}"
        ));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item::conversation_item(&conversation)))
            .set_condition_expression(e.condition_expression())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let old = match result {
            Ok(_) => return Ok(conversation),
            Err(SdkError::ServiceError(s))
                if matches!(s.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                let PutItemError::ConditionalCheckFailedException(ccf) = s.into_err() else {
                    return Err(ApiError::internal("unreachable: matched above"));
                };
                ccf.item
            }
            Err(other) => return Err(classify(other)),
        };
        let (owner, id) = (conversation.owner.clone(), conversation.id.clone());
        let taken = || ApiError::AlreadyExists(format!("{} already exists", id.name()));
        let Some(old) = old else {
            return Err(taken());
        };
        let before = split::head_from(&old)?;
        // A retry of the create that made it (AIP-155), or the SDK's retry of this very write
        // after its answer was lost (every field equal down to the microsecond).
        if (request_id.is_some() && before.request_id == request_id) || before == conversation {
            return self.with_body(&owner, &id, old, None).await;
        }
        Err(taken())
    }

    /// Reads a conversation, soft-deleted ones included: one consistent `Query` of its head
    /// and body (read again when torn).
    pub async fn get(&self, owner: &Owner, id: &ConversationId) -> Result<Conversation, ApiError> {
        self.visible_conversation(owner, id)
            .await?
            .map(|(_, c)| c)
            .ok_or_else(|| not_found(id))
    }

    /// Reads a conversation and its latest messages (the `FULL` view), in ascending order: the
    /// conversation's `Query`, then a `Query` of the newest messages it holds (the key range
    /// bounded by what that read shows: above the clear boundary, up to the highest order). At
    /// most `limit` messages, and no more than fit in one page's budget; a soft-deleted
    /// conversation comes without messages (`None`).
    pub async fn get_full(
        &self,
        owner: &Owner,
        id: &ConversationId,
        limit: usize,
    ) -> Result<(Conversation, Option<Vec<Message>>), ApiError> {
        let (_, conversation) = self
            .visible_conversation(owner, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if conversation.is_deleted() {
            return Ok((conversation, None));
        }
        let mut messages = self.latest_messages(owner, &conversation, limit).await?;
        // Newest first as read: keep the newest that fit the budget, then show them oldest first.
        messages.truncate(fitting(messages.iter().map(|m| rendered_len(&m.to_json()))));
        messages.reverse();
        Ok((conversation, Some(messages)))
    }

    /// Updates the masked fields. With `upsert` (allowMissing) a missing conversation is created
    /// from the body instead; the flag says whether that happened. An update naming none of
    /// the large fields is one conditional `UpdateItem` of the head, with the body read
    /// alongside for the answer; one naming a large field reads the conversation and writes
    /// head and body in one transaction ([`Store::update_body`]).
    pub async fn update(
        &self,
        owner: &Owner,
        id: &ConversationId,
        update: &Update,
        pre: &Preconditions,
        upsert: Option<&Writable>,
    ) -> Result<(Conversation, bool), ApiError> {
        let label_sets = match &update.labels {
            LabelsChange::Keys(keys) => keys.iter().filter(|(_, v)| v.is_some()).count(),
            _ => 0,
        };
        if label_sets > MAX_LABELS {
            return Err(ApiError::field(
                "labels",
                "too_many",
                format!("a conversation holds at most {MAX_LABELS} labels"),
            ));
        }
        if update.writes_large_fields()
            && let Some(done) = self.update_body(owner, id, update, pre, upsert).await?
        {
            return Ok(done);
        }
        self.update_in_place(owner, id, update, pre, upsert, label_sets)
            .await
    }

    /// An update of a layout 4 conversation that writes its large fields: one consistent read
    /// of head and body, the update applied to what it shows (the 400 of an immutable field and
    /// the 422 of a limit decided there), then one transaction that updates the head (the
    /// guard's conditions, pinned to the version read) and puts the body whole (only while its
    /// version is the one read); refused, it reads again. `None`: the conversation is a whole
    /// item of layout 3, updated in place.
    async fn update_body(
        &self,
        owner: &Owner,
        id: &ConversationId,
        update: &Update,
        pre: &Preconditions,
        upsert: Option<&Writable>,
    ) -> Result<Option<(Conversation, bool)>, ApiError> {
        for attempt in 0..MAX_RETRIES {
            let (head, body) = self.read_pair(owner, id).await?;
            let now = Timestamp::now();
            let Some(head) = head.filter(|h| item::is_visible(h, now)) else {
                let Some(body) = upsert.filter(|_| pre.on_missing().is_none()) else {
                    // allowMissing creates nothing when a precondition names a version.
                    return Err(missing(id, pre));
                };
                let new = NewConversation::try_from(body.clone())?;
                match self.create(owner, id, None, new).await {
                    Ok(created) => return Ok(Some((created, true))),
                    // Created meanwhile by someone else: update it instead.
                    Err(ApiError::AlreadyExists(_)) => continue,
                    Err(e) => return Err(e),
                }
            };
            if !split::has_body(&head) {
                return Ok(None);
            }
            let Some(old) = split::join(&head, body.as_ref())? else {
                // Torn: a write of the large fields between the two reads.
                backoff(attempt).await;
                continue;
            };
            if old.is_deleted() {
                return Err(match upsert {
                    Some(_) => ApiError::AlreadyExists(format!(
                        "{} is soft-deleted; undelete it first",
                        id.name()
                    )),
                    None => not_found(id),
                });
            }
            pre.check(old.version)
                .map_err(|source_kind| ApiError::Stale {
                    resource: id.name(),
                    source_kind,
                })?;
            let mut new = update.applied_to(&old)?;
            if matches!(update.metadata, MetadataChange::Keys(_)) {
                let size = seed_items::metadata_size(new.metadata.as_ref());
                if size > MAX_METADATA_BYTES {
                    return Err(ApiError::field(
                        "metadata",
                        "too_large",
                        format!(
                            "the metadata would be {size} bytes when serialised; at most {MAX_METADATA_BYTES}"
                        ),
                    ));
                }
            }
            if new.labels.len() > MAX_LABELS {
                return Err(ApiError::field(
                    "labels",
                    "too_many",
                    format!("a conversation holds at most {MAX_LABELS} labels"),
                ));
            }
            let version = Version::next(now, Some(old.version));
            new.version = version;
            let (new_head, new_body) = split::split(item::conversation_item(&new), version);
            let mut e = Expr::new();
            Self::guard(&mut e, now, pre, Some(old.version), version);
            let del = e.name(attr::DELETE);
            e.condition(format!("attribute_not_exists({del})"));
            // The head's own fields an update may write, as the update left them.
            for name in HEAD_FIELDS {
                match new_head.get(name) {
                    Some(value) => e.set(name, value.clone()),
                    None => e.remove(name),
                }
            }
            e.set(attr::BODY_VERSION, item::n(version.0));
            let mut b = Expr::new();
            let (body_version, read) = (
                b.name(attr::BODY_VERSION),
                b.value(item::n(split::body_version(&head).unwrap_or(-1))),
            );
            b.condition(format!("{body_version} = {read}"));
            let put_body = Put::builder()
                .table_name(&self.table)
                .set_item(Some(new_body))
                .set_condition_expression(b.condition_expression())
                .set_expression_attribute_names(b.names())
                .set_expression_attribute_values(b.values())
                .build()
                .map_err(ApiError::internal)?;
            let items = vec![
                self.tx_update(Self::key(owner, id), &e, false)?,
                TransactWriteItem::builder().put(put_body).build(),
            ];
            if self.transact(items).await?.is_none() {
                // As stored: what the transaction wrote, read back through the items' mapping.
                return Ok(Some((stored(&new)?, false)));
            }
            // Written since it was read: read again.
            backoff(attempt).await;
        }
        Err(ApiError::Aborted(format!(
            "{} is changing too fast; retry",
            id.name()
        )))
    }

    /// An update of the head alone (a mask naming none of the large fields), or of a whole
    /// item of layout 3: one conditional `UpdateItem`, the body read alongside for the answer.
    async fn update_in_place(
        &self,
        owner: &Owner,
        id: &ConversationId,
        update: &Update,
        pre: &Preconditions,
        upsert: Option<&Writable>,
        label_sets: usize,
    ) -> Result<(Conversation, bool), ApiError> {
        let mut pinned = pre.pinned();
        let mut counted_labels = false;
        let mut metadata_bytes: Option<usize> = None;
        for _ in 0..MAX_RETRIES {
            let now = Timestamp::now();
            let new = Version::next(now, pinned);
            let mut e = Expr::new();
            Self::guard(&mut e, now, pre, pinned, new);
            let del = e.name(attr::DELETE);
            // Soft-deleted conversations are not updated (404, or 409 with allowMissing).
            e.condition(format!("attribute_not_exists({del})"));
            Self::write_update(&mut e, update, label_sets, counted_labels, metadata_bytes);
            let (attempt, body) = self.write_head(owner, id, e).await;
            let old = match attempt? {
                Attempt::Written(new) => {
                    return Ok((self.with_body(owner, id, new, body).await?, false));
                }
                Attempt::Refused(old) => Self::visible(old, now)?,
            };
            let Some(old) = old else {
                let Some(body) = upsert.filter(|_| pre.on_missing().is_none()) else {
                    // allowMissing creates nothing when a precondition names a version.
                    return Err(missing(id, pre));
                };
                let new = NewConversation::try_from(body.clone())?;
                match self.create(owner, id, None, new).await {
                    Ok(created) => return Ok((created, true)),
                    // Created meanwhile by someone else: update it instead.
                    Err(ApiError::AlreadyExists(_)) => continue,
                    Err(e) => return Err(e),
                }
            };
            if old.is_deleted() {
                return Err(match upsert {
                    Some(_) => ApiError::AlreadyExists(format!(
                        "{} is soft-deleted; undelete it first",
                        id.name()
                    )),
                    None => not_found(id),
                });
            }
            pre.check(old.version)
                .map_err(|source_kind| ApiError::Stale {
                    resource: id.name(),
                    source_kind,
                })?;
            if let Some(required) = &update.profile_must_be
                && old.conversation_profile != *required
            {
                return Err(ApiError::InvalidArgument(
                    "conversationProfile is immutable after create".into(),
                ));
            }
            if update
                .phone_must_be
                .iter()
                .any(|(leaf, v)| leaf.of(old.phone_number.as_ref()) != *v)
            {
                return Err(ApiError::InvalidArgument(
                    "phoneNumber is immutable after create".into(),
                ));
            }
            if let MetadataChange::Keys(keys) = &update.metadata {
                let mut metadata = old.metadata.clone().unwrap_or_default();
                for (k, v) in keys {
                    match v {
                        Some(v) => metadata.insert(k.clone(), v.clone()),
                        None => metadata.remove(k),
                    };
                }
                let size = seed_items::metadata_size(Some(&metadata).filter(|m| !m.is_empty()));
                if size > MAX_METADATA_BYTES {
                    return Err(ApiError::field(
                        "metadata",
                        "too_large",
                        format!(
                            "the metadata would be {size} bytes when serialised; at most {MAX_METADATA_BYTES}"
                        ),
                    ));
                }
                // The conservative size condition may have refused a valid update: redo it
                // pinned to the version just seen, with the exact size known.
                metadata_bytes = Some(size);
            }
            if let LabelsChange::Keys(keys) = &update.labels {
                let mut labels = old.labels.clone();
                for (k, v) in keys {
                    match v {
                        Some(v) => labels.insert(k.clone(), v.clone()),
                        None => labels.remove(k),
                    };
                }
                if labels.len() > MAX_LABELS {
                    return Err(ApiError::field(
                        "labels",
                        "too_many",
                        format!("a conversation holds at most {MAX_LABELS} labels"),
                    ));
                }
                // The conservative size condition refused a valid update: redo it pinned to
                // the version just seen, with the exact count known.
                counted_labels = true;
            }
            pinned = Some(old.version);
        }
        Err(ApiError::Aborted(format!(
            "{} is changing too fast; retry",
            id.name()
        )))
    }

    fn write_update(
        e: &mut Expr,
        u: &Update,
        label_sets: usize,
        counted_labels: bool,
        metadata_bytes: Option<usize>,
    ) {
        fn text(e: &mut Expr, attribute: &str, value: &Option<Option<String>>) {
            match value {
                Some(Some(v)) => e.set(attribute, item::s(v.as_str())),
                Some(None) => e.remove(attribute),
                None => {}
            }
        }
        text(e, attr::DISPLAY_NAME, &u.display_name);
        text(e, attr::CATEGORY, &u.category);
        text(e, attr::LANGUAGE, &u.language_code);
        if let Some(agents) = &u.agents {
            e.set(attr::AGENTS, item::list(agents));
        }
        if let Some(required) = &u.profile_must_be {
            let p = e.name(attr::PROFILE);
            // conversationProfile is immutable: the mask may only repeat its current value.
            match required {
                Some(v) => {
                    let v = e.value(item::s(v.as_str()));
                    e.condition(format!("{p} = {v}"));
                }
                None => e.condition(format!("attribute_not_exists({p})")),
            }
        }
        match &u.labels {
            LabelsChange::Keep => {}
            LabelsChange::Replace(labels) => e.set(attr::LABELS, item::labels(labels)),
            LabelsChange::Keys(keys) => {
                if label_sets > 0 && !counted_labels {
                    // At most 64 labels after the update, counting every set key as new.
                    let l = e.name(attr::LABELS);
                    let limit = e.value(item::n(MAX_LABELS - label_sets));
                    e.condition(format!("size({l}) <= {limit}"));
                }
                for (k, v) in keys {
                    match v {
                        Some(v) => e.set_entry(attr::LABELS, k, item::s(v.as_str())),
                        None => e.remove_entry(attr::LABELS, k),
                    }
                }
            }
        }
        match &u.metadata {
            MetadataChange::Keep => {}
            MetadataChange::Replace(m) => {
                e.set(attr::METADATA, seed_items::metadata(m.as_ref()));
                e.set(
                    attr::METADATA_BYTES,
                    item::n(seed_items::metadata_size(m.as_ref())),
                );
            }
            MetadataChange::Keys(keys) => {
                let bytes = e.name(attr::METADATA_BYTES);
                match metadata_bytes {
                    // The exact size after this write, learnt from a refusal.
                    Some(exact) => e.set(attr::METADATA_BYTES, item::n(exact)),
                    // At most 16 KiB after the write, counting every set key as new; the count
                    // may then run ahead of the metadata, until a refusal recounts it.
                    None => {
                        let growth = seed_items::metadata_growth(keys);
                        let room = e.value(item::n(MAX_METADATA_BYTES.saturating_sub(growth)));
                        e.condition(format!(
                            "attribute_not_exists({bytes}) OR {bytes} <= {room}"
                        ));
                        let zero = e.value(item::n(0));
                        let grown = e.value(item::n(growth));
                        e.set_clause(format!(
                            "{bytes} = if_not_exists({bytes}, {zero}) + {grown}"
                        ));
                    }
                }
                seed_items::write_metadata_keys(e, keys);
            }
        }
        for write in &u.nested {
            match write {
                NestedWrite::Quality(q) => e.set(attr::QUALITY, seed_items::quality(q)),
                NestedWrite::Call(c) => e.set(attr::CALL, seed_items::call(c)),
                NestedWrite::DataSource(d) => e.set(attr::DATA_SOURCE, seed_items::data_source(d)),
                NestedWrite::Gcs(g) => {
                    e.set_path(&seed_items::object_path(Object::Gcs), seed_items::gcs(g))
                }
                NestedWrite::Dialogflow(d) => e.set_path(
                    &seed_items::object_path(Object::Dialogflow),
                    seed_items::dialogflow(d),
                ),
                NestedWrite::Leaf(leaf, Some(v)) => {
                    e.set_path(&seed_items::leaf_path(*leaf), seed_items::leaf_value(v))
                }
                NestedWrite::Leaf(leaf, None) => e.remove_path(&seed_items::leaf_path(*leaf)),
            }
        }
        match &u.sources {
            Some(sources) if sources.is_empty() => e.remove(attr::SOURCES),
            Some(sources) => e.set(attr::SOURCES, seed_items::sources(sources)),
            None => {}
        }
        // phoneNumber is immutable: the mask may only repeat its current values.
        for (leaf, value) in &u.phone_must_be {
            let path = e.path(&[attr::PHONE.to_owned(), seed_items::snake_case(leaf.name())]);
            match value {
                Some(v) => {
                    let v = e.value(seed_items::leaf_value(v));
                    e.condition(format!("{path} = {v}"));
                }
                None => e.condition(format!("attribute_not_exists({path})")),
            }
        }
        if let Some(stage) = u.stage {
            e.set(attr::STAGE, item::s(stage.as_str()));
        }
        match u.start_time {
            Some(Some(t)) => e.set(attr::START, item::n(t.micros())),
            Some(None) => e.remove(attr::START),
            None => {}
        }
        match u.expire_time {
            Some(Some(t)) => {
                e.set(attr::EXPIRE, item::n(t.micros()));
                e.set(attr::EXPIRE_AT, item::n(t.epoch_seconds_ceil()));
                e.set(attr::TTL, item::n(t.epoch_seconds_ceil()));
            }
            Some(None) => {
                e.remove(attr::EXPIRE);
                e.remove(attr::EXPIRE_AT);
                e.remove(attr::TTL);
            }
            None => {}
        }
    }

    /// Soft-deletes a conversation (AIP-164). With `allow_missing`, a missing or already deleted
    /// conversation is a success: the latter is returned as it is, the former as `None`.
    pub async fn delete(
        &self,
        owner: &Owner,
        id: &ConversationId,
        pre: &Preconditions,
        allow_missing: bool,
    ) -> Result<Option<Conversation>, ApiError> {
        let mut pinned = pre.pinned();
        let mut ttl_at_expiry = false;
        for _ in 0..MAX_RETRIES {
            let now = Timestamp::now();
            let new = Version::next(now, pinned);
            let purge = now
                .plus(Duration::THIRTY_DAYS)
                .ok_or_else(|| ApiError::internal("purge time overflow"))?;
            let mut e = Expr::new();
            Self::guard(&mut e, now, pre, pinned, new);
            let del = e.name(attr::DELETE);
            // Only a live conversation can be deleted.
            e.condition(format!("attribute_not_exists({del})"));
            e.set(attr::DELETE, item::n(now.micros()));
            e.set(attr::PURGE, item::n(purge.micros()));
            // TTL removes it at the earlier of purgeTime and expireTime: a soft delete never
            // postpones the expiry. DynamoDB has no min(), so the first attempt assumes no
            // earlier expiry and says so in its condition; if the conversation expires first, the
            // retry (pinned to the version that refusal returned) leaves the TTL at the expiry.
            if ttl_at_expiry {
                let (ttl, expire_at) = (e.name(attr::TTL), e.name(attr::EXPIRE_AT));
                e.set_clause(format!("{ttl} = {expire_at}"));
            } else {
                let expire = e.name(attr::EXPIRE);
                let purge_v = e.value(item::n(purge.micros()));
                e.condition(format!(
                    "attribute_not_exists({expire}) OR {expire} >= {purge_v}"
                ));
                e.set(attr::TTL, item::n(purge.epoch_seconds_ceil()));
            }
            let (attempt, body) = self.write_head(owner, id, e).await;
            let (old, head) = match attempt? {
                Attempt::Written(new) => {
                    return self.with_body(owner, id, new, body).await.map(Some);
                }
                Attempt::Refused(old) => (Self::visible(old.clone(), now)?, old),
            };
            match (old, head) {
                (None, _) if allow_missing && pre.on_missing().is_none() => return Ok(None),
                (None, _) => return Err(missing(id, pre)),
                (Some(old), Some(head)) if old.is_deleted() => {
                    return if allow_missing {
                        self.with_body(owner, id, head, body).await.map(Some)
                    } else {
                        Err(not_found(id))
                    };
                }
                (Some(old), _) => {
                    pre.check(old.version)
                        .map_err(|source_kind| ApiError::Stale {
                            resource: id.name(),
                            source_kind,
                        })?;
                    ttl_at_expiry = old.expire_time.is_some_and(|t| t < purge);
                    pinned = Some(old.version);
                }
            }
        }
        Err(ApiError::Aborted(format!(
            "{} is changing too fast; retry",
            id.name()
        )))
    }

    /// Restores a soft-deleted conversation; a live one is a 409 `ALREADY_EXISTS`.
    pub async fn undelete(
        &self,
        owner: &Owner,
        id: &ConversationId,
        pre: &Preconditions,
    ) -> Result<Conversation, ApiError> {
        let mut pinned = pre.pinned();
        for _ in 0..MAX_RETRIES {
            let now = Timestamp::now();
            let new = Version::next(now, pinned);
            let mut e = Expr::new();
            Self::guard(&mut e, now, pre, pinned, new);
            let del = e.name(attr::DELETE);
            // Only a soft-deleted conversation can be undeleted.
            e.condition(format!("attribute_exists({del})"));
            e.remove(attr::DELETE);
            e.remove(attr::PURGE);
            // The TTL goes back to the expiry, or to "never" when there is none.
            let (ttl, expire_at) = (e.name(attr::TTL), e.name(attr::EXPIRE_AT));
            let never = e.value(item::n(item::NEVER));
            e.set_clause(format!("{ttl} = if_not_exists({expire_at}, {never})"));
            let (attempt, body) = self.write_head(owner, id, e).await;
            let old = match attempt? {
                Attempt::Written(new) => return self.with_body(owner, id, new, body).await,
                Attempt::Refused(old) => Self::visible(old, now)?,
            };
            let Some(old) = old else {
                return Err(missing(id, pre));
            };
            if !old.is_deleted() {
                return Err(ApiError::AlreadyExists(format!(
                    "{} is not deleted",
                    id.name()
                )));
            }
            pre.check(old.version)
                .map_err(|source_kind| ApiError::Stale {
                    resource: id.name(),
                    source_kind,
                })?;
            pinned = Some(old.version);
        }
        Err(ApiError::Aborted(format!(
            "{} is changing too fast; retry",
            id.name()
        )))
    }

    /// Completes a conversation; completing a completed one returns it unchanged.
    pub async fn complete(
        &self,
        owner: &Owner,
        id: &ConversationId,
        pre: &Preconditions,
    ) -> Result<Conversation, ApiError> {
        let mut pinned = pre.pinned();
        for _ in 0..MAX_RETRIES {
            let now = Timestamp::now();
            let new = Version::next(now, pinned);
            let mut e = Expr::new();
            Self::guard(&mut e, now, pre, pinned, new);
            let (del, life) = (e.name(attr::DELETE), e.name(attr::LIFECYCLE));
            let in_progress = e.value(item::s(Lifecycle::InProgress.as_str()));
            // Only a live conversation in progress is completed; a completed one stays as it is.
            e.condition(format!(
                "attribute_not_exists({del}) AND {life} = {in_progress}"
            ));
            e.set(attr::LIFECYCLE, item::s(Lifecycle::Completed.as_str()));
            e.set(attr::END, item::n(now.micros()));
            let (attempt, body) = self.write_head(owner, id, e).await;
            let (old, head) = match attempt? {
                Attempt::Written(new) => return self.with_body(owner, id, new, body).await,
                Attempt::Refused(old) => (Self::visible(old.clone(), now)?, old),
            };
            let (Some(old), Some(head)) = (old, head) else {
                return Err(missing(id, pre));
            };
            if old.is_deleted() {
                return Err(not_found(id));
            }
            pre.check(old.version)
                .map_err(|source_kind| ApiError::Stale {
                    resource: id.name(),
                    source_kind,
                })?;
            if old.lifecycle == Lifecycle::Completed {
                return self.with_body(owner, id, head, body).await;
            }
            pinned = Some(old.version);
        }
        Err(ApiError::Aborted(format!(
            "{} is changing too fast; retry",
            id.name()
        )))
    }

    /// One conditional `UpdateItem` of a conversation's head ([`Store::try_update`]) and, sent
    /// with it, a read of its body for the answer (a failed read is `None`: the answer reads it
    /// again).
    async fn write_head(
        &self,
        owner: &Owner,
        id: &ConversationId,
        e: Expr,
    ) -> (Result<Attempt, ApiError>, Option<Item>) {
        let (attempt, body) = tokio::join!(
            self.try_update(Self::key(owner, id), e),
            self.read_body(owner, id)
        );
        (attempt, body.ok().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::etag::{Etag, IfMatch};
    use crate::domain::field_mask::{MAX_MASK_PATHS, UpdateMask};

    /// DynamoDB's limit on each expression string.
    const EXPRESSION_LIMIT: usize = 4096;

    #[test]
    fn the_largest_update_a_client_can_send_stays_within_dynamodb_s_expression_limit() {
        // Every top-level path and every leaf (the deepest paths), 64 label keys set (more is a
        // 422), and metadata keys up to the mask's bound.
        let mut paths = [
            "displayName",
            "category",
            "agents",
            "conversationProfile",
            "languageCode",
            "conversationStage",
            "startTime",
            "expireTime",
            "sources",
            "phoneNumber.countryCode",
            "phoneNumber.phoneNumber",
            "qualityMetadata.customerSatisfactionRating",
            "qualityMetadata.waitDuration",
            "qualityMetadata.menuPath",
            "qualityMetadata.agentInfo",
            "callMetadata.customerChannel",
            "callMetadata.agentChannel",
            "dataSource.gcsSource.audioUri",
            "dataSource.gcsSource.transcriptUri",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        let sets = MAX_LABELS;
        let keys = MAX_MASK_PATHS - paths.len() - sets;
        paths.extend((0..sets).map(|i| format!("labels.k{i}")));
        paths.extend((0..keys).map(|i| format!("metadata.k{i}")));
        let mask = UpdateMask::parse(&paths.join(",")).expect("the largest mask");
        let labels: serde_json::Map<String, serde_json::Value> =
            (0..sets).map(|i| (format!("k{i}"), "v".into())).collect();
        let metadata: serde_json::Map<String, serde_json::Value> =
            (0..keys).map(|i| (format!("k{i}"), i.into())).collect();
        let now = Timestamp::now();
        let body = serde_json::json!({"displayName": "d", "category": "c", "agents": ["a"], "conversationProfile": "p",
            "languageCode": "en", "metadata": metadata, "conversationStage": "HUMAN_ASSIST_STAGE",
            "startTime": "2026-01-01T00:00:00Z", "ttl": "60s", "labels": labels,
            "sources": [{"model": "m", "explore": "e"}],
            "phoneNumber": {"countryCode": 1, "phoneNumber": "+14155550100"},
            "qualityMetadata": {"customerSatisfactionRating": 5, "waitDuration": "1s", "menuPath": "a",
                "agentInfo": [{"agentId": "a"}]},
            "callMetadata": {"customerChannel": 1, "agentChannel": 2},
            "dataSource": {"gcsSource": {"audioUri": "gs://a/b", "transcriptUri": "gs://a/c"}}});
        let body =
            Writable::from_json(body.as_object().expect("object"), now, false).expect("valid");
        let update = Update::new(&mask, &body).expect("valid");
        // The most preconditions: 50 If-Match tags and a body etag.
        let tags = (0..50).map(|i| Etag::Version(Version(i))).collect();
        let pre = Preconditions {
            body: Some(Etag::Version(Version(1))),
            if_match: Some(IfMatch::Tags(tags)),
        };
        for (counted, pinned, bytes) in [(false, None, None), (true, Some(Version(7)), Some(100))] {
            let mut e = Expr::new();
            Store::guard(&mut e, now, &pre, pinned, Version::next(now, pinned));
            let del = e.name(attr::DELETE);
            e.condition(format!("attribute_not_exists({del})"));
            Store::write_update(&mut e, &update, sets, counted, bytes);
            // What `try_update` adds to every write: its token.
            Store::sign(&mut e, &format!("{:016x}", u64::MAX));
            let update_len = e.update_expression().expect("an update").len();
            let condition_len = e.condition_expression().expect("a condition").len();
            assert!(
                update_len < EXPRESSION_LIMIT,
                "update expression {update_len} bytes"
            );
            assert!(
                condition_len < EXPRESSION_LIMIT,
                "condition expression {condition_len} bytes"
            );
        }
    }
}
