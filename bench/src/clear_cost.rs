//! Clear's cost against how many messages it clears (part of the `cost` scenario). A clear
//! reads the conversation, counts the shorter of the range it keeps and the range it newly
//! clears (keys-only `Query`s, one per MB), and moves the boundary with one `UpdateItem`: so
//! clearing 10 000 messages and keeping the last 5 costs what clearing 10 and keeping 5 does
//! (the kept range is read), and clearing the oldest 5 of 10 000 what clearing the oldest 5 of
//! 15 does (the newly cleared range is read). Each invocation clears a conversation seeded for
//! it before the function starts, behind the counting proxy.

use serde_json::{Value, json};

use conversations::domain::conversation::Conversation;

use crate::events::{self, HttpRequest};
use crate::process::{self, Env};
use crate::runtime_api::RuntimeApi;
use crate::{Bench, Result, TIMEOUT, check, fixtures, proxy};

impl Bench {
    /// The four cases (`settings.scale_messages` is the long conversation: 10 000 in a full
    /// run), each `settings.cost` times, after one unmeasured clear.
    pub(crate) async fn clear_cost(&self) -> Result<Value> {
        let s = &self.settings;
        let long = s.scale_messages;
        let owner = fixtures::owner("bench-clear-cost")?;
        // (what, messages held, throughOrder)
        let cases = [
            ("clear 10, keep the last 5".to_owned(), 15, 10),
            (format!("clear {long}, keep the last 5"), long + 5, long),
            ("clear the oldest 5, keep 10".to_owned(), 15, 5),
            (format!("clear the oldest 5, keep {}", long - 5), long, 5),
        ];
        let warm_up = self.db.seed_with_messages(&owner, 15).await?;
        let mut seeded = Vec::new();
        for (_, messages, _) in &cases {
            seeded.push(
                self.db
                    .seed_each_with_messages(&owner, s.cost, *messages)
                    .await?,
            );
        }
        let proxy = proxy::Proxy::start(self.env.dynamodb.clone())
            .await
            .map_err(|e| e.to_string())?;
        let env = Env {
            dynamodb: proxy.endpoint().to_owned(),
            table: self.env.table.clone(),
        };
        let function = "clear-messages";
        let api = RuntimeApi::start().await.map_err(|e| e.to_string())?;
        let started = std::time::Instant::now();
        let child = self.spawn(function, &api, &env, &[])?;
        tokio::time::timeout(TIMEOUT, api.first_poll_after(started))
            .await
            .map_err(|_| format!("{function} did not start"))?;
        let clear = |c: &Conversation, through: u64| {
            HttpRequest::new(
                "POST",
                format!("/v1/conversations/{}/messages/clear", c.id.as_str()),
            )
            .body(json!({ "throughOrder": through }))
            .event(owner.as_str())
        };
        let outcome = self.invoke(&api, &clear(&warm_up, 10)).await?;
        check(function, 200, &outcome.json())?;
        proxy.take();
        let mut rows = Vec::new();
        for ((what, messages, through), conversations) in cases.iter().zip(&seeded) {
            let kept = messages - through;
            let mut tally = proxy::Tally::default();
            for c in conversations {
                let response = self.invoke(&api, &clear(c, *through)).await?.json();
                check(function, 200, &response)?;
                tally.add(proxy.take());
                // It cleared what it says: the conversation holds the messages kept.
                let body = events::body(&response);
                if body["messageCount"].as_u64() != Some(kept) {
                    return Err(format!(
                        "clearing through {through} of {messages} messages left messageCount {}, not {kept}",
                        body["messageCount"]
                    ));
                }
            }
            let mut row = serde_json::Map::new();
            row.insert("what".into(), what.as_str().into());
            row.insert("messages".into(), (*messages).into());
            row.insert("through_order".into(), (*through).into());
            row.insert("cleared".into(), (*through).into());
            row.insert("kept".into(), kept.into());
            let read = if kept <= *through {
                "kept"
            } else {
                "newly cleared"
            };
            row.insert("range_read".into(), read.into());
            row.extend(tally.json());
            rows.push(Value::Object(row));
        }
        process::stop(child).await;
        Ok(Value::Array(rows))
    }
}
