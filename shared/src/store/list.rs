//! Listing an owner's conversations, by creation or by activity: one `Query` of an index per
//! page; by activity, plus one `BatchGetItem` of the page's bodies per 100 conversations.
//!
//! `by-owner` holds a conversation's head and its body under adjacent keys (`store::split`), so a
//! page by `createTime` is one `Query` of whole conversations, two items each. `by-activity`
//! holds heads only (a body has no `lastUsedTime` key): their bodies are read by key. The
//! filter's terms on head fields (lifecycle, stage, category, createTime, visibility, deletion)
//! are evaluated by DynamoDB; those on body fields (labels, agents) here, on the joined
//! conversation — and every term again here, so that a pair read again from the table (torn,
//! or cut by the page's limit) is judged like the rest.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::KeysAndAttributes;

use super::expr::Expr;
use super::item::{self, Item, attr};
use super::schema;
use super::split;
use super::{MAX_PAGE_BYTES, MAX_RETRIES, Page, Store, backoff, classify, fitting, rendered_len};
use crate::domain::conversation::Conversation;
use crate::domain::filter::{Filter, OrderBy, Term};
use crate::domain::ids::{ConversationId, Owner};
use crate::domain::page_token::PageToken;
use crate::domain::time::Timestamp;
use crate::error::ApiError;

/// The index a list order reads, and its key attributes.
struct Index {
    name: &'static str,
    pk: &'static str,
    sk: &'static str,
}

impl Index {
    fn of(order: OrderBy) -> Self {
        if order.by_activity() {
            Self {
                name: schema::ACTIVITY_INDEX,
                pk: attr::GSI2_PK,
                sk: attr::GSI2_SK,
            }
        } else {
            Self {
                name: schema::OWNER_INDEX,
                pk: attr::GSI_PK,
                sk: attr::GSI_SK,
            }
        }
    }

    fn by_activity(&self) -> bool {
        self.name == schema::ACTIVITY_INDEX
    }
}

/// What to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// The filter.
    pub filter: Filter,
    /// The order.
    pub order: OrderBy,
    /// Whether soft-deleted conversations are included.
    pub show_deleted: bool,
    /// The page size, 1–1000.
    pub page_size: usize,
    /// Where to continue.
    pub page_token: Option<String>,
}

impl ListQuery {
    fn scope(&self) -> String {
        format!(
            "conversations|{}|{:?}|{}",
            self.filter.canonical(),
            self.order,
            self.show_deleted
        )
    }

    /// Whether a conversation read (its head, and the conversation it makes) belongs on the
    /// page: visible, deleted only when asked for, inside the createTime range, every term.
    fn admits(&self, head: &Item, c: &Conversation, now: Timestamp) -> bool {
        let micros = c.create_time.micros();
        item::is_visible(head, now)
            && (self.show_deleted || !c.is_deleted())
            && self.filter.created_from.is_none_or(|lo| micros >= lo)
            && self.filter.created_to.is_none_or(|hi| micros <= hi)
            && self.filter.terms.iter().all(|term| match term {
                Term::Lifecycle(l) => c.lifecycle == *l,
                Term::Stage(s) => c.stage == *s,
                Term::Category(x) => c.category.as_deref() == Some(x.as_str()),
                Term::Label(k, v) => c.labels.get(k) == Some(v),
                Term::Agent(a) => c.agents.contains(a),
            })
    }
}

/// The items of one conversation a page read, in index order.
#[derive(Default)]
struct Group {
    head: Option<Item>,
    body: Option<Item>,
    /// The index key of its last item read: where a page that ends with it continues.
    position: String,
}

impl Store {
    /// Lists the caller's conversations.
    pub async fn list(
        &self,
        owner: &Owner,
        query: &ListQuery,
    ) -> Result<Page<Conversation>, ApiError> {
        let scope = query.scope();
        let start = match &query.page_token {
            Some(text) => Some(PageToken::decode(text, &self.token_key, owner, &scope)?),
            None => None,
        };
        let index = Index::of(query.order);
        let mut e = Expr::new();
        let gpk = e.name(index.pk);
        let owner_v = e.value(item::s(owner.key()));
        let mut key_condition = format!("{gpk} = {owner_v}");
        let from = query
            .filter
            .created_from
            .map(|m| format!("{:018}", m.max(0)));
        let to = match query.filter.created_to {
            Some(m) if m < 0 => return Ok(empty()),
            // `$` sorts after `#`: every key of that microsecond (heads and bodies) is below it.
            Some(m) => Some(format!("{m:018}$")),
            None => None,
        };
        // The conditions on head fields, evaluated by DynamoDB.
        let mut head: Vec<String> = Vec::new();
        match (from, to) {
            (Some(lo), Some(hi)) if lo > hi => return Ok(empty()),
            // Ordered by activity: the createTime range is a filter on the read items.
            _ if index.by_activity() => {
                if let Some(lo) = query.filter.created_from {
                    let (create, lo) = (e.name(attr::CREATE), e.value(item::n(lo)));
                    head.push(format!("{create} >= {lo}"));
                }
                if let Some(hi) = query.filter.created_to {
                    let (create, hi) = (e.name(attr::CREATE), e.value(item::n(hi)));
                    head.push(format!("{create} <= {hi}"));
                }
            }
            // Ordered by creation: the createTime range narrows the index key range itself.
            (Some(lo), Some(hi)) => {
                let (gsk, lo, hi) = (e.name(index.sk), e.value(item::s(lo)), e.value(item::s(hi)));
                key_condition.push_str(&format!(" AND {gsk} BETWEEN {lo} AND {hi}"));
            }
            (Some(lo), None) => {
                let (gsk, lo) = (e.name(index.sk), e.value(item::s(lo)));
                key_condition.push_str(&format!(" AND {gsk} >= {lo}"));
            }
            (None, Some(hi)) => {
                let (gsk, hi) = (e.name(index.sk), e.value(item::s(hi)));
                key_condition.push_str(&format!(" AND {gsk} <= {hi}"));
            }
            (None, None) => {}
        }
        let now = Timestamp::now();
        head.push(Self::visible_at(&mut e, now));
        if !query.show_deleted {
            let del = e.name(attr::DELETE);
            head.push(format!("attribute_not_exists({del})"));
        }
        for term in &query.filter.terms {
            let (field, value) = match term {
                Term::Lifecycle(l) => (e.name(attr::LIFECYCLE), e.value(item::s(l.as_str()))),
                Term::Stage(s) => (e.name(attr::STAGE), e.value(item::s(s.as_str()))),
                Term::Category(c) => (e.name(attr::CATEGORY), e.value(item::s(c.as_str()))),
                // On the body: judged here, on the joined conversation.
                Term::Label(..) | Term::Agent(_) => continue,
            };
            head.push(format!("{field} = {value}"));
        }
        if index.by_activity() {
            for clause in head {
                e.condition(clause);
            }
        } else {
            // Bodies pass: they are joined with their heads here.
            let (sk, body) = (e.name(attr::SK), e.value(item::s(split::BODY_SK)));
            e.condition(format!("{sk} = {body} OR ({})", head.join(" AND ")));
        }
        let exclusive_start = match &start {
            Some(token) => Some(Self::index_start_key(owner, &index, &token.position)?),
            None => None,
        };
        // By creation a conversation is two items (head and body).
        let per_conversation = if index.by_activity() { 1 } else { 2 };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index.name)
            .key_condition_expression(key_condition)
            .set_filter_expression(e.condition_expression())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .scan_index_forward(!query.order.descending())
            .limit(i32::try_from(per_conversation * (query.page_size + 1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(exclusive_start)
            .send()
            .await
            .map_err(classify)?;
        let position = |i: &Item| i.get(index.sk).and_then(|v| v.as_s().ok()).cloned();
        let mut groups = group(out.items.unwrap_or_default(), &position);
        let mut last = out.last_evaluated_key.as_ref().and_then(position);
        if index.by_activity() {
            if groups.len() > query.page_size {
                // The head past the page's end only says that more follow: its body is not read,
                // and the next page starts after the page's last conversation.
                groups.truncate(query.page_size);
                last = groups.last().map(|g| g.position.clone());
            }
            self.read_bodies(&mut groups).await?;
        } else if last.is_some() && groups.len() > 1 {
            // The page's limit may have cut the last conversation between its two items (a
            // head without its body, or a body without its head): the next page starts before
            // it and reads it whole.
            let cut = groups.last().is_some_and(|g| match &g.head {
                Some(head) => split::has_body(head) && g.body.is_none(),
                None => true,
            });
            if cut {
                groups.pop();
                last = groups.last().map(|g| g.position.clone());
            }
        }
        // Each conversation that belongs on the page, with where the page ends after it.
        let mut read: Vec<(Conversation, String, usize)> = Vec::new();
        for g in groups {
            let position = g.position.clone();
            let bound = split::rendered_bound(g.head.as_ref(), g.body.as_ref());
            if let Some((head, conversation, again)) = self.joined(owner, g).await?
                && query.admits(&head, &conversation, now)
            {
                // Read again: measured from what was read the second time.
                let bound = if again {
                    bound_of(&conversation)
                } else {
                    bound
                };
                read.push((conversation, position, bound));
            }
        }
        let mut cut = read.len() > query.page_size;
        read.truncate(query.page_size);
        // Measuring each conversation by rendering it costs as much as the answer does: only a
        // page whose stored size could render past the budget is measured.
        let could_overflow = read.iter().map(|(.., bound)| bound).sum::<usize>() > MAX_PAGE_BYTES;
        if could_overflow {
            let keep = fitting(read.iter().map(|(c, ..)| rendered_len(&c.to_json())));
            if keep < read.len() {
                read.truncate(keep);
                cut = true;
            }
        }
        let next = if cut {
            read.last().map(|(_, p, _)| p.clone())
        } else {
            last
        };
        Ok(Page {
            items: read.into_iter().map(|(c, ..)| c).collect(),
            next_page_token: next
                .map(|position| PageToken { position }.encode(&self.token_key, owner, &scope)),
        })
    }

    /// The conversation a group makes, read again from the table when its items are not of one
    /// version (torn, a body the index has not caught up with, or a pair the page's limit cut);
    /// `None` for a body alone (its head did not pass the filter, or showed on the page before).
    /// The flag says whether it was read again.
    async fn joined(
        &self,
        owner: &Owner,
        g: Group,
    ) -> Result<Option<(Item, Conversation, bool)>, ApiError> {
        let Some(head) = g.head else {
            return Ok(None);
        };
        if let Some(conversation) = split::join(&head, g.body.as_ref())? {
            return Ok(Some((head, conversation, false)));
        }
        let id = ConversationId::parse(item::get_s(&head, attr::ID)?)
            .map_err(|_| ApiError::internal("stored item has a malformed id"))?;
        Ok(self
            .read_conversation(owner, &id)
            .await?
            .map(|(head, c)| (head, c, true)))
    }

    /// Reads the bodies of a `by-activity` page's heads: `BatchGetItem`s of up to 100 keys
    /// (retrying what DynamoDB leaves unprocessed).
    async fn read_bodies(&self, groups: &mut [Group]) -> Result<(), ApiError> {
        let keys: Vec<Item> = groups
            .iter()
            .filter_map(|g| g.head.as_ref())
            .filter(|h| split::has_body(h))
            .filter_map(|h| h.get(attr::PK).cloned())
            .map(|pk| {
                Item::from([
                    (attr::PK.to_owned(), pk),
                    (attr::SK.to_owned(), item::s(split::BODY_SK)),
                ])
            })
            .collect();
        let mut bodies: HashMap<String, Item> = HashMap::new();
        for chunk in keys.chunks(100) {
            let mut wanted = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(true)
                .build()
                .map_err(ApiError::internal)?;
            for attempt in 0..MAX_RETRIES {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(self.table.clone(), wanted)
                    .send()
                    .await
                    .map_err(classify)?;
                for body in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    if let Ok(pk) = item::get_s(&body, attr::PK) {
                        bodies.insert(pk.to_owned(), body);
                    }
                }
                match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                    Some(left) if !left.keys().is_empty() => wanted = left,
                    _ => break,
                }
                if attempt + 1 == MAX_RETRIES {
                    return Err(ApiError::Aborted(
                        "DynamoDB kept reads unprocessed; retry".into(),
                    ));
                }
                backoff(attempt).await;
            }
        }
        for g in groups {
            let pk = g.head.as_ref().and_then(|h| item::get_s(h, attr::PK).ok());
            if let Some(body) = pk.and_then(|pk| bodies.remove(pk)) {
                g.body = Some(body);
            }
        }
        Ok(())
    }

    /// Where a list page starts in `index`: the item the previous page ended with, rebuilt from
    /// the token's position (its index sort key: a head's, or a body's in `by-owner`) and the
    /// caller (so a token only ever points into the caller's own key range).
    fn index_start_key(owner: &Owner, index: &Index, position: &str) -> Result<Item, ApiError> {
        let invalid = || ApiError::InvalidArgument("pageToken is invalid".into());
        let (micros, rest) = position.split_once('#').ok_or_else(invalid)?;
        if micros.len() != 18 || !micros.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let (id, body) = match rest.strip_suffix('#') {
            Some(id) if !index.by_activity() => (id, true),
            _ => (rest, false),
        };
        let id = ConversationId::parse(id).map_err(|_| invalid())?;
        let mut key = if body {
            split::body_key(owner, &id)
        } else {
            Self::key(owner, &id)
        };
        key.insert(index.pk.into(), item::s(owner.key()));
        key.insert(index.sk.into(), item::s(position));
        Ok(key)
    }
}

/// Consecutive items of one conversation (one partition key) as one group, in read order.
fn group(items: Vec<Item>, position: &impl Fn(&Item) -> Option<String>) -> Vec<Group> {
    let mut groups: Vec<(String, Group)> = Vec::new();
    for found in items {
        let pk = item::get_s(&found, attr::PK).unwrap_or_default().to_owned();
        if groups.last().is_none_or(|(last, _)| *last != pk) {
            groups.push((pk, Group::default()));
        }
        let Some((_, g)) = groups.last_mut() else {
            continue;
        };
        if let Some(p) = position(&found) {
            g.position = p;
        }
        if split::is_body(&found) {
            g.body = Some(found);
        } else {
            g.head = Some(found);
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

/// An upper bound of a conversation's rendered size, from its stored form.
fn bound_of(c: &Conversation) -> usize {
    item::rendered_bound(&item::conversation_item(c))
}

fn empty<T>() -> Page<T> {
    Page {
        items: Vec::new(),
        next_page_token: None,
    }
}
