//! Write cost against conversation size: the capacity units of every write (create, update,
//! append, batch append with and without `conversationMetadata`, update message, delete message,
//! clear messages, complete, delete, undelete, purge) on a conversation under 1 KB, on the
//! largest the contract allows (every large field at its limit, the rule's comparison) and on
//! that largest with the head's own fields at their limits too (for reference: see
//! docs/decisions.md, "The largest conversation of the write-cost rule"), measured through the functions behind
//! the counting proxy (DynamoDB bills an `UpdateItem` by the larger of the item before and after,
//! a transaction's items twice, and every index item rewritten per KB). What a write removes (a
//! message, messages up to an order, a conversation) is there for each invocation: created
//! before that write's function starts.
//!
//! The contract's rule (revision 3, "Write units independent of the conversation's size") is on
//! write units: a write's reads (the body read alongside a head's write, the pair's `Query`) are
//! counted apart. Write units are given in both conventions of the proxy (a transaction's index
//! writes billed twice, and once), by part (table, `by-owner`, `by-activity`), with the ratio
//! largest ÷ small of each, and whether the rule binds the write (it names every write here but
//! create, batch append with `conversationMetadata` and an update of a large field, measured for
//! reference).

use std::collections::BTreeMap;

use conversations::domain::ids::ConversationId;
use conversations::store::Store;
use conversations::store::item::Item;
use conversations::store::split;
use serde_json::{Value, json};

use crate::events::{self, HttpRequest};
use crate::fixtures;
use crate::process::Env;
use crate::runtime_api::RuntimeApi;
use crate::stats::round;
use crate::{Bench, Result, check, proxy};

/// A conversation as small as a real one gets: under 1 KB stored.
fn small() -> Value {
    json!({"agents": ["agent-1"], "displayName": "support", "labels": {"team": "billing"}})
}

/// The largest conversation of the contract's rule: the small one's own fields (its
/// `displayName`, a server-chosen id, no `requestId`) with every large field (`labels`,
/// `metadata`, `agents`, `qualityMetadata`, `callMetadata`, `dataSource`, `sources`,
/// `phoneNumber`, `conversationProfile`) at its limit: about 60 KB stored. The rule compares
/// conversations by these fields ("the conversation's large fields"); the head's own fields are
/// the same in both, so what the ratio shows is what the large fields cost the writes.
pub(crate) fn largest() -> Value {
    let text = |c: char, n: usize| c.to_string().repeat(n);
    let labels: serde_json::Map<String, Value> = (0..64)
        .map(|i| {
            (
                format!("k{i:02}{}", text('x', 60)),
                Value::from(text('v', 63)),
            )
        })
        .collect();
    // 16 KiB serialised: {"blob":"…"} is 11 bytes around the text.
    let metadata = json!({"blob": text('m', 16 * 1024 - 11)});
    let agent_info: Vec<Value> = (0..16)
        .map(|i| {
            json!({"agentId": format!("{i:02}{}", text('a', 126)), "displayName": text('d', 256),
                   "team": text('t', 128), "dispositionCode": text('c', 128)})
        })
        .collect();
    let uri = |name: &str| format!("gs://{name}/{}", text('u', 2048 - 6 - name.len()));
    let sources: Vec<Value> = (0..16)
        .map(|_| json!({"model": text('m', 256), "explore": text('e', 256)}))
        .collect();
    json!({
        "displayName": small()["displayName"],
        "agents": largest_agents(),
        "conversationProfile": text('p', 512),
        "labels": labels,
        "metadata": metadata,
        "qualityMetadata": {"customerSatisfactionRating": 5, "waitDuration": "12.5s",
                            "menuPath": text('p', 256), "agentInfo": agent_info},
        "callMetadata": {"customerChannel": 1, "agentChannel": 2},
        "dataSource": {"gcsSource": {"audioUri": uri("audio"), "transcriptUri": uri("text")}},
        "sources": sources,
        "phoneNumber": {"countryCode": 1, "phoneNumber": "+15555550100"},
    })
}

/// [`largest`] with the head's own fields at their limits too: `displayName` (256 ASCII
/// characters), `category`, `languageCode`, `conversationStage`, `startTime`, `expireTime`, and
/// the 63-character id and `requestId` of [`create_request`]. Not the rule's comparison (these
/// are not the large fields, and a small conversation may hold them as well); measured to show
/// what they cost every write of the head.
fn largest_head_at_limits() -> Value {
    let mut body = largest();
    body["displayName"] = json!("n".repeat(256));
    body["category"] = json!("c".repeat(64));
    // The longest tag `languageCode` takes: 35 characters.
    body["languageCode"] = json!("en-aaaaaaaa-bbbbbbbb-cccccccc-ddddd");
    body["conversationStage"] = json!("VIRTUAL_AGENT_STAGE");
    body["startTime"] = json!("2026-01-01T00:00:00.123456Z");
    body["expireTime"] = json!("2099-12-31T23:59:59.999999Z");
    body
}

/// The sizes measured: the rule's two, then the reference.
const SMALL: &str = "small";
const LARGEST: &str = "largest";
const HEAD_AT_LIMITS: &str = "largest_head_at_limits";

/// The largest conversation's agents: 16 of 512 characters.
fn largest_agents() -> Vec<String> {
    (0..16)
        .map(|i| format!("{i:02}{}", "a".repeat(510)))
        .collect()
}

/// What a create of `size` sends besides its body: with the head at its limits, the longest id a
/// client may choose (63 characters) and a `requestId` (both stored with the conversation);
/// otherwise neither (a server-chosen UUID).
fn create_request(size: &str, body: &Value) -> HttpRequest {
    let request = HttpRequest::new("POST", "/v1/conversations").body(body.clone());
    match size {
        HEAD_AT_LIMITS => {
            let id = format!("c{}{}", uuid::Uuid::new_v4().simple(), "x".repeat(30));
            request
                .query("conversationId", id)
                .query("requestId", uuid::Uuid::new_v4().to_string())
        }
        _ => request,
    }
}

/// The `displayName` update `i` sends: as long as the conversation's own (with the head at its
/// limits, 256 characters, and it stays there).
fn display_name(size: &str, i: usize) -> String {
    let name = format!("renamed {i}");
    match size {
        HEAD_AT_LIMITS => format!("{name:n<256}"),
        _ => name,
    }
}

/// The `conversationMetadata` of batch `i`: on the small conversation one key set and one
/// removed; on the largest, whose metadata is at its 16 KiB limit, its one key replaced by a value
/// of the same size (any key added would pass the limit: a 422).
fn state_change(size: &str, i: usize) -> Value {
    match size {
        SMALL => json!({"state": {"turn": i, "step": "answered"}, "draft": null}),
        _ => {
            let c = char::from(b'a' + (i % 26) as u8);
            json!({"blob": c.to_string().repeat(16 * 1024 - 11)})
        }
    }
}

/// One write measured `n` times (after one unmeasured request): its mean write units by part in
/// both conventions, its mean read units, and its answers.
struct Measured {
    /// Write units, a transaction's index writes billed twice.
    writes: BTreeMap<String, f64>,
    /// Write units, a transaction's index writes billed once.
    writes_once: BTreeMap<String, f64>,
    /// Read units (every part).
    reads: f64,
    /// The last invocation's requests.
    operations: Vec<String>,
    bodies: Vec<Value>,
}

impl Measured {
    fn json(&self, extra: &[(&str, Value)]) -> Value {
        let total = |m: &BTreeMap<String, f64>| round(m.values().sum::<f64>() + 0.0);
        let parts = |m: &BTreeMap<String, f64>| {
            m.iter()
                .map(|(p, u)| (p.clone(), json!(round(*u))))
                .collect::<serde_json::Map<_, _>>()
        };
        let mut row = json!({
            "write_units": total(&self.writes),
            "write_units_by_part": parts(&self.writes),
            "write_units_index_once": total(&self.writes_once),
            "write_units_by_part_index_once": parts(&self.writes_once),
            "read_units": round(self.reads),
            "operations": self.operations,
        });
        for (k, v) in extra {
            row[*k] = v.clone();
        }
        row
    }
}

/// The writes the contract's rule names (their write units on the largest conversation at most
/// 1.5× those on a small one); the others are measured for reference.
const BOUND: [&str; 10] = [
    "update (displayName)",
    "append",
    "batch append (4 messages)",
    "update message",
    "delete message",
    "clear messages (one more)",
    "complete",
    "delete",
    "undelete",
    "purge",
];

/// The rule's bound.
const RULE: f64 = 1.5;

impl Bench {
    /// Runs `events` through `function` behind `proxy` (the first unmeasured).
    async fn measured(
        &self,
        proxy: &proxy::Proxy,
        env: &Env,
        function: &str,
        expected: u16,
        events: Vec<Value>,
    ) -> Result<Measured> {
        let api = RuntimeApi::start().await.map_err(|e| e.to_string())?;
        let child = self.spawn(function, &api, env, &[])?;
        let mut m = Measured {
            writes: BTreeMap::new(),
            writes_once: BTreeMap::new(),
            reads: 0.0,
            operations: Vec::new(),
            bodies: Vec::new(),
        };
        let n = events.len().saturating_sub(1).max(1) as f64;
        for (i, event) in events.iter().enumerate() {
            let outcome = self.invoke(&api, event).await?;
            let response = outcome.json();
            check(function, expected, &response)?;
            m.bodies.push(events::body(&response));
            let calls = proxy.take();
            if i == 0 {
                continue;
            }
            for call in &calls {
                if proxy::is_write(&call.operation) {
                    for (part, u) in &call.units_by_part {
                        *m.writes.entry(part.clone()).or_insert(0.0) += u / n;
                    }
                    for (part, u) in &call.units_by_part_index_once {
                        *m.writes_once.entry(part.clone()).or_insert(0.0) += u / n;
                    }
                } else {
                    m.reads += call.capacity_units / n;
                }
            }
            m.operations = calls.into_iter().map(|c| c.operation).collect();
        }
        crate::process::stop(child).await;
        Ok(m)
    }

    /// A conversation's head and body as stored (consistent `GetItem`s of the harness's own).
    async fn pair(&self, owner: &str, id: &str) -> Result<[Option<Item>; 2]> {
        let owner = fixtures::owner(owner)?;
        let id = ConversationId::parse(id).map_err(|e| e.to_string())?;
        let mut items = [None, None];
        for (found, key) in items
            .iter_mut()
            .zip([Store::key(&owner, &id), split::body_key(&owner, &id)])
        {
            let out = self
                .db
                .client
                .get_item()
                .table_name(&self.db.table)
                .set_key(Some(key))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            *found = out.item;
        }
        Ok(items)
    }

    /// Every write on a small and on the largest conversation.
    pub(crate) async fn write_cost(&self) -> Result<Value> {
        let proxy = proxy::Proxy::start(self.env.dynamodb.clone())
            .await
            .map_err(|e| e.to_string())?;
        let env = Env {
            dynamodb: proxy.endpoint().to_owned(),
            table: self.env.table.clone(),
        };
        let n = self.settings.cost;
        let mut rows: BTreeMap<&str, Value> = BTreeMap::new();
        let mut sizes = serde_json::Map::new();
        for (size, body) in [
            (SMALL, small()),
            (LARGEST, largest()),
            (HEAD_AT_LIMITS, largest_head_at_limits()),
        ] {
            // One owner of the same length for both: only the conversation differs.
            let owner = format!("bench-write-cost-{}", uuid::Uuid::new_v4().simple());
            let ev = |r: HttpRequest| r.event(&owner);
            let path = |id: &str| format!("/v1/conversations/{id}");
            // Creates: the measured ones, then one conversation for the other writes and one
            // for each complete, delete and purge.
            let creates: Vec<Value> = (0..(4 * (n + 1) + 1))
                .map(|_| ev(create_request(size, &body)))
                .collect();
            let created = self
                .measured(&proxy, &env, "create-conversation", 201, creates)
                .await?;
            let ids: Vec<String> = created
                .bodies
                .iter()
                .filter_map(|b| b["name"].as_str())
                .map(|name| name.trim_start_matches("conversations/").to_owned())
                .collect();
            let (target, pools) = (&ids[0], &ids[1..]);
            let rendered_kb = serde_json::to_vec(&created.bodies[0]).map_or(0, |b| b.len()) / 1024;
            let bytes = |i: &Option<Item>| i.as_ref().map_or(0, proxy::stored_bytes);
            let [head, body_item] = self.pair(&owner, target).await?;
            sizes.insert(
                size.to_owned(),
                json!({"rendered_kb": rendered_kb, "head_bytes_created": bytes(&head),
                       "body_bytes": bytes(&body_item)}),
            );
            let mut record = |write: &'static str, m: &Measured| {
                let row = rows.entry(write).or_insert_with(|| json!({"write": write}));
                row[size] = m.json(&[]);
            };
            record("create", &created);
            let updates = (0..=n)
                .map(|i| {
                    ev(HttpRequest::new("PATCH", path(target))
                        .query("updateMask", "displayName")
                        .body(json!({"displayName": display_name(size, i)})))
                })
                .collect();
            let updated = self
                .measured(&proxy, &env, "update-conversation", 200, updates)
                .await?;
            record("update (displayName)", &updated);
            // A large field rewritten with the value it holds: the body's put, for reference.
            let agents = body["agents"].clone();
            let large_updates = (0..=n)
                .map(|_| {
                    ev(HttpRequest::new("PATCH", path(target))
                        .query("updateMask", "agents")
                        .body(json!({ "agents": agents })))
                })
                .collect();
            let large_updated = self
                .measured(&proxy, &env, "update-conversation", 200, large_updates)
                .await?;
            record("update (agents: a large field)", &large_updated);
            let repeat = |r: HttpRequest| (0..=n).map(|_| ev(r.clone())).collect::<Vec<_>>();
            let appended = self
                .measured(
                    &proxy,
                    &env,
                    "append-message",
                    201,
                    repeat(
                        HttpRequest::new("POST", format!("{}/messages", path(target)))
                            .body(json!({"type": "USER", "content": "hello from the benchmark"})),
                    ),
                )
                .await?;
            record("append", &appended);
            let batch = self
                .measured(
                    &proxy,
                    &env,
                    "batch-append-messages",
                    201,
                    repeat(
                        HttpRequest::new("POST", format!("{}/messages/batch", path(target)))
                            .body(json!({"messages": fixtures::agent_turn()})),
                    ),
                )
                .await?;
            record("batch append (4 messages)", &batch);
            let states = (0..=n)
                .map(|i| {
                    ev(
                        HttpRequest::new("POST", format!("{}/messages/batch", path(target)))
                            .body(json!({"messages": fixtures::agent_turn(),
                                   "conversationMetadata": state_change(size, i)})),
                    )
                })
                .collect();
            let stated = self
                .measured(&proxy, &env, "batch-append-messages", 201, states)
                .await?;
            record("batch append (4 messages) + conversationMetadata", &stated);
            let edits = (0..=n)
                .map(|i| {
                    ev(
                        HttpRequest::new("PATCH", format!("{}/messages/1", path(target)))
                            .query("updateMask", "content")
                            .body(json!({"content": format!("[redacted {i}]")})),
                    )
                })
                .collect();
            let edited = self
                .measured(&proxy, &env, "update-message", 200, edits)
                .await?;
            record("update message", &edited);
            // The target holds 9 (n + 1) messages now (appends, batches): delete orders 2 to
            // n + 2, one each (message 1 is the one edited).
            let deletes = (0..=n)
                .map(|i| {
                    ev(HttpRequest::new(
                        "DELETE",
                        format!("{}/messages/{}", path(target), i + 2),
                    ))
                })
                .collect();
            let popped = self
                .measured(&proxy, &env, "delete-message", 200, deletes)
                .await?;
            record("delete message", &popped);
            // Then clear through one order more each time: the first clears orders 1 to n + 3,
            // each measured one the next message (the newly cleared range, the shorter, is read).
            let clears = (0..=n)
                .map(|i| {
                    ev(
                        HttpRequest::new("POST", format!("{}/messages/clear", path(target)))
                            .body(json!({"throughOrder": n + 3 + i})),
                    )
                })
                .collect();
            let cleared = self
                .measured(&proxy, &env, "clear-messages", 200, clears)
                .await?;
            record("clear messages (one more)", &cleared);
            // The head as every write above left it (writer tokens, counters, boundary).
            let [head, _] = self.pair(&owner, target).await?;
            sizes[size]["head_bytes_written"] = json!(bytes(&head));
            // What each of its attributes takes (name and value), largest first.
            let mut attributes: Vec<(String, usize)> = head
                .iter()
                .flatten()
                .map(|(k, v)| {
                    let one = Item::from([(k.clone(), v.clone())]);
                    (k.clone(), proxy::stored_bytes(&one))
                })
                .collect();
            attributes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            sizes[size]["head_attribute_bytes"] = json!(attributes);
            let on_pool = |slice: &[String], suffix: &str, method: &'static str| {
                slice
                    .iter()
                    .map(|id| ev(HttpRequest::new(method, format!("{}{suffix}", path(id)))))
                    .collect::<Vec<_>>()
            };
            let completed = self
                .measured(
                    &proxy,
                    &env,
                    "complete-conversation",
                    200,
                    on_pool(&pools[..=n], "/complete", "POST"),
                )
                .await?;
            record("complete", &completed);
            let deleted = self
                .measured(
                    &proxy,
                    &env,
                    "delete-conversation",
                    200,
                    on_pool(&pools[n + 1..2 * (n + 1)], "", "DELETE"),
                )
                .await?;
            record("delete", &deleted);
            // The conversations just deleted, undeleted.
            let undeleted = self
                .measured(
                    &proxy,
                    &env,
                    "undelete-conversation",
                    200,
                    on_pool(&pools[n + 1..2 * (n + 1)], "/undelete", "POST"),
                )
                .await?;
            record("undelete", &undeleted);
            let purged = self
                .measured(
                    &proxy,
                    &env,
                    "purge-conversation",
                    200,
                    on_pool(&pools[2 * (n + 1)..3 * (n + 1)], "/purge", "POST"),
                )
                .await?;
            record("purge", &purged);
        }
        let order = [
            "create",
            "update (displayName)",
            "update (agents: a large field)",
            "append",
            "batch append (4 messages)",
            "batch append (4 messages) + conversationMetadata",
            "update message",
            "delete message",
            "clear messages (one more)",
            "complete",
            "delete",
            "undelete",
            "purge",
        ];
        let mut out = Vec::new();
        for write in order {
            let mut row = rows.remove(write).ok_or("a write was not measured")?;
            let ratio = |size: &str, key: &str| {
                let (s, l) = (
                    row[SMALL][key].as_f64().unwrap_or(0.0),
                    row[size][key].as_f64().unwrap_or(0.0),
                );
                round(l / s.max(f64::MIN_POSITIVE))
            };
            let (twice, once) = (
                ratio(LARGEST, "write_units"),
                ratio(LARGEST, "write_units_index_once"),
            );
            let reads = ratio(LARGEST, "read_units");
            let at_limits = (
                ratio(HEAD_AT_LIMITS, "write_units"),
                ratio(HEAD_AT_LIMITS, "write_units_index_once"),
            );
            row["head_at_limits_ratio"] = json!(at_limits.0);
            row["head_at_limits_ratio_index_once"] = json!(at_limits.1);
            let bound = BOUND.contains(&write);
            row["ratio"] = json!(twice);
            row["ratio_index_once"] = json!(once);
            row["read_ratio"] = json!(reads);
            row["bound_by_rule"] = json!(bound);
            row["within_rule"] = if bound {
                json!(twice <= RULE && once <= RULE)
            } else {
                Value::Null
            };
            out.push(row);
        }
        Ok(json!({
            "conventions": {
                "write_units": "a transaction's index writes billed twice, like its table writes",
                "write_units_index_once": "a transaction's index writes billed once",
                "read_units": "the reads the write makes (not bound by the rule)",
            },
            "rule": RULE,
            "sizes": sizes,
            "rows": out,
        }))
    }
}
