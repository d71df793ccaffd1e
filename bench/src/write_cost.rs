//! Write cost against conversation size: the capacity units of every write (create, update,
//! append, batch append with and without `conversationMetadata`, update message, delete message,
//! clear messages, complete, delete, undelete, purge) on a conversation under 1 KB and on the largest the
//! contract allows (every field at its limit), measured through the functions behind the
//! counting proxy (DynamoDB bills an `UpdateItem` by the larger of the item before and after, a
//! transaction's items twice, and every index item rewritten per KB). What a write removes (a
//! message, messages up to an order, a conversation) is there for each invocation: created
//! before that write's function starts.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::events::HttpRequest;
use crate::fixtures;
use crate::process::Env;
use crate::runtime_api::RuntimeApi;
use crate::stats::round;
use crate::{Bench, Result, check, proxy};

/// A conversation as small as a real one gets: under 1 KB stored.
fn small() -> Value {
    json!({"agents": ["agent-1"], "displayName": "support", "labels": {"team": "billing"}})
}

/// Every field of a conversation at the contract's limit (about 60 KB stored).
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
        "displayName": text('n', 256),
        "category": text('c', 64),
        "agents": (0..16).map(|i| format!("{i:02}{}", text('a', 510))).collect::<Vec<_>>(),
        "conversationProfile": text('p', 512),
        "languageCode": "en-US",
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

/// The `conversationMetadata` of batch `i`: on the small conversation one key set and one
/// removed; on the largest, whose metadata is at its 16 KiB limit, its one key replaced by a value
/// of the same size (any key added would pass the limit: a 422).
fn state_change(size: &str, i: usize) -> Value {
    match size {
        "small" => json!({"state": {"turn": i, "step": "answered"}, "draft": null}),
        _ => {
            let c = char::from(b'a' + (i % 26) as u8);
            json!({"blob": c.to_string().repeat(16 * 1024 - 11)})
        }
    }
}

/// One write measured `n` times (after one unmeasured request): its mean units, per part.
struct Measured {
    units: f64,
    by_part: BTreeMap<String, f64>,
    bodies: Vec<Value>,
}

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
        let (mut units, mut by_part, mut bodies) = (Vec::new(), BTreeMap::new(), Vec::new());
        let n = events.len().saturating_sub(1).max(1) as f64;
        for (i, event) in events.iter().enumerate() {
            let outcome = self.invoke(&api, event).await?;
            let response = outcome.json();
            check(function, expected, &response)?;
            bodies.push(
                serde_json::from_str(response["body"].as_str().unwrap_or("null"))
                    .unwrap_or(Value::Null),
            );
            let calls = proxy.take();
            if i == 0 {
                continue;
            }
            units.push(calls.iter().map(|c| c.capacity_units).sum::<f64>());
            for call in &calls {
                for (part, u) in &call.units_by_part {
                    *by_part.entry(part.clone()).or_insert(0.0) += u / n;
                }
            }
        }
        crate::process::stop(child).await;
        Ok(Measured {
            units: units.iter().sum::<f64>() / n + 0.0,
            by_part,
            bodies,
        })
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
        for (size, body) in [("small", small()), ("largest", largest())] {
            let owner = format!("bench-write-cost-{size}-{}", uuid::Uuid::new_v4().simple());
            let ev = |r: HttpRequest| r.event(&owner);
            let path = |id: &str| format!("/v1/conversations/{id}");
            // Creates: the measured ones, then one conversation for the other writes and one
            // for each complete, delete and purge.
            let creates: Vec<Value> = (0..(4 * (n + 1) + 1))
                .map(|_| ev(HttpRequest::new("POST", "/v1/conversations").body(body.clone())))
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
            let stored_kb = serde_json::to_vec(&created.bodies[0]).map_or(0, |b| b.len()) / 1024;
            let mut record = |write: &'static str, m: &Measured| {
                let row = rows.entry(write).or_insert_with(|| json!({"write": write}));
                row[size] = json!({
                    "capacity_units": round(m.units),
                    "capacity_units_by_part": m.by_part.iter().map(|(p, u)| (p.clone(), json!(round(*u)))).collect::<serde_json::Map<_, _>>(),
                    "rendered_kb": stored_kb,
                });
            };
            record("create", &created);
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
            let updates = (0..=n)
                .map(|i| {
                    ev(HttpRequest::new("PATCH", path(target))
                        .query("updateMask", "displayName")
                        .body(json!({"displayName": format!("renamed {i}")})))
                })
                .collect();
            let updated = self
                .measured(&proxy, &env, "update-conversation", 200, updates)
                .await?;
            record("update (displayName)", &updated);
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
            let (s, l) = (
                row["small"]["capacity_units"].as_f64().unwrap_or(0.0),
                row["largest"]["capacity_units"].as_f64().unwrap_or(0.0),
            );
            row["ratio"] = json!(round(l / s.max(f64::MIN_POSITIVE)));
            out.push(row);
        }
        Ok(Value::Array(out))
    }
}
