//! `make bench`: drives the functions' release binaries through a local Lambda Runtime API against
//! DynamoDB Local and writes what it measured as JSON (`bench/report.py` turns it into
//! `bench/RESULTS.md` and the chart). Every figure comes with its floor, measured in the same run:
//! a bare `lambda_runtime` function for start-up, the raw SDK calls for warm latency, the small
//! case for scale.

mod baselines;
mod clear_cost;
mod events;
mod fixtures;
mod load;
mod process;
mod proxy;
mod runtime_api;
mod stats;
mod write_cost;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use serde_json::{Value, json};

use events::{HttpRequest, status};
use fixtures::{Db, Fixture, Method};
use process::Env;
use runtime_api::RuntimeApi;
use stats::{Summary, round};

type Result<T> = std::result::Result<T, String>;

/// A cold-start case: its name in the report, the binary, extra environment, the method it serves.
type ColdCase = (
    String,
    &'static str,
    Vec<(&'static str, &'static str)>,
    Option<Method>,
);

/// How much of everything to do.
#[derive(Debug, Clone)]
struct Settings {
    smoke: bool,
    cold_starts: usize,
    warm: usize,
    cost: usize,
    scale_conversations: usize,
    scale_others: usize,
    scale_messages: u64,
    scale_iterations: usize,
    throughput: Duration,
    levels: Vec<usize>,
    load_clients: usize,
    load: Duration,
}

impl Settings {
    fn full() -> Self {
        Self {
            smoke: false,
            cold_starts: 20,
            warm: 1000,
            cost: 5,
            scale_conversations: 10_000,
            scale_others: 100_000,
            scale_messages: 10_000,
            scale_iterations: 200,
            throughput: Duration::from_secs(5),
            levels: vec![1, 8, 32],
            load_clients: 32,
            load: Duration::from_secs(60),
        }
    }

    /// A few seconds: every scenario runs, with tiny counts (CI checks the harness still works).
    fn smoke() -> Self {
        Self {
            smoke: true,
            cold_starts: 2,
            warm: 10,
            cost: 1,
            scale_conversations: 100,
            scale_others: 200,
            scale_messages: 30,
            scale_iterations: 3,
            throughput: Duration::from_millis(300),
            levels: vec![1, 2],
            load_clients: 4,
            load: Duration::from_secs(2),
        }
    }

    fn json(&self) -> Value {
        json!({
            "smoke": self.smoke,
            "cold_starts": self.cold_starts,
            "warm_invocations": self.warm,
            "cost_invocations": self.cost,
            "scale_conversations": self.scale_conversations,
            "scale_other_owners_items": self.scale_others,
            "scale_messages": self.scale_messages,
            "scale_iterations": self.scale_iterations,
            "throughput_seconds": self.throughput.as_secs_f64(),
            "throughput_clients": self.levels,
            "load_clients": self.load_clients,
            "load_seconds": self.load.as_secs_f64(),
        })
    }
}

struct Bench {
    settings: Settings,
    bins: PathBuf,
    logs: PathBuf,
    env: Env,
    db: Db,
}

const TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let mut settings = Settings::full();
    let (mut bins, mut out, mut logs) = (None, None, None);
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--smoke" => settings = Settings::smoke(),
            "--bins" => bins = args.next().map(PathBuf::from),
            "--out" => out = args.next().map(PathBuf::from),
            "--logs" => logs = args.next().map(PathBuf::from),
            // One scenario only (cold, warm, cost, write_cost, scale, throughput, baselines, load,
            // delegation): for trying a change.
            "--only" => only = args.next(),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let bins = bins.ok_or("--bins DIR (the functions' binaries) is required")?;
    let out = out.ok_or("--out FILE is required")?;
    let logs = logs.unwrap_or_else(|| std::env::temp_dir().join("bench-logs"));
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let table = std::env::var("CONVERSATIONS_TABLE").map_err(|_| "CONVERSATIONS_TABLE is unset")?;
    let dynamodb = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
        .map_err(|_| "AWS_ENDPOINT_URL_DYNAMODB (DynamoDB Local) is unset")?;
    let client = Client::new(&conversations::app::sdk_config().await);
    conversations::store::schema::ensure_table(&client, &table)
        .await
        .map_err(|e| format!("creating the table: {e}"))?;
    let bench = Bench {
        settings,
        bins,
        logs,
        env: Env {
            dynamodb,
            table: table.clone(),
        },
        db: Db { client, table },
    };
    let started = Instant::now();
    let mut results = json!({"settings": bench.settings.json()});
    let run = |scenario: &str| only.as_deref().is_none_or(|o| o == scenario);
    if run("cold") {
        step("cold starts");
        results["cold"] = bench.cold_starts().await?;
    }
    if run("warm") {
        step("warm latency and peak memory");
        let fixture = Fixture::seed(bench.db.clone(), bench.settings.warm + 20).await?;
        results["warm"] = bench.warm(&fixture).await?;
    }
    if run("cost") {
        step("DynamoDB cost");
        let fixture = Fixture::seed(bench.db.clone(), bench.settings.cost + 5).await?;
        results["cost"] = bench.cost(&fixture).await?;
        step("clear's cost against how many messages it clears");
        results["clear_cost"] = bench.clear_cost().await?;
    }
    if run("write_cost") {
        step("write cost against conversation size");
        results["write_cost"] = bench.write_cost().await?;
    }
    if run("scale") {
        step("scale");
        results["scale"] = bench.scale().await?;
    }
    if run("throughput") {
        step("throughput");
        results["throughput"] = bench.throughput().await?;
    }
    if run("baselines") {
        step(
            "what users would pick instead: Python (boto3, awslambdaric) and Node.js (AWS SDK v3)",
        );
        results["baselines"] = bench.baselines().await?;
    }
    if run("load") {
        step("load");
        results["load"] = bench.load().await?;
    }
    if run("delegation") {
        step("load from one service identity, alone and acting for many users");
        results["delegation"] = bench.delegation().await?;
    }
    results["duration_seconds"] = json!(round(started.elapsed().as_secs_f64()));
    let text = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
    std::fs::write(&out, text).map_err(|e| format!("{}: {e}", out.display()))?;
    step(&format!("wrote {}", out.display()));
    Ok(())
}

fn step(what: &str) {
    eprintln!("bench: {what}");
}

impl Bench {
    fn bin(&self, function: &str) -> PathBuf {
        self.bins.join(function)
    }

    fn log(&self, function: &str) -> PathBuf {
        self.logs.join(format!("{function}.log"))
    }

    fn spawn(
        &self,
        function: &str,
        api: &RuntimeApi,
        env: &Env,
        extra: &[(&str, &str)],
    ) -> Result<tokio::process::Child> {
        process::spawn(
            &self.bin(function),
            &api.address(),
            env,
            extra,
            &self.log(function),
        )
        .map_err(|e| format!("starting {}: {e}", self.bin(function).display()))
    }

    /// One cold start: exec to first `GET /next` (init), and to the answer of a first event
    /// queued before the process started (init + first request).
    async fn cold_start(
        &self,
        function: &str,
        extra: &[(&str, &str)],
        event: &Value,
        expected: Option<u16>,
    ) -> Result<(Duration, Duration)> {
        let api = RuntimeApi::start().await.map_err(|e| e.to_string())?;
        let started = Instant::now();
        let child = self.spawn(function, &api, &self.env, extra)?;
        let measured = tokio::time::timeout(TIMEOUT, async {
            tokio::join!(api.first_poll_after(started), api.invoke(event))
        })
        .await;
        process::stop(child).await;
        let (polled, outcome) = measured.map_err(|_| {
            format!(
                "{function} did not start within {TIMEOUT:?} (init errors: {:?}; log: {})",
                api.init_errors(),
                self.log(function).display()
            )
        })?;
        let outcome = outcome?;
        if let Some(expected) = expected {
            check(function, expected, &outcome.json())?;
        }
        Ok((polled - started, outcome.answered - started))
    }

    async fn cold_starts(&self) -> Result<Value> {
        let fixture = Fixture::seed(self.db.clone(), self.settings.cold_starts * 2 + 5).await?;
        let hello = json!({});
        let purge = json!({"Records": []});
        let mut cases: Vec<ColdCase> = vec![("hello-world".into(), "hello-world", vec![], None)];
        // Each binary once, with the first method it serves.
        for m in Method::ALL {
            if cases.iter().all(|(name, ..)| name != m.function()) {
                cases.push((m.function().into(), m.function(), vec![], Some(m)));
            }
        }
        cases.push(("purge-messages".into(), "purge-messages", vec![], None));
        // The same functions without the connection opened at init, to show what it saves.
        for m in [Method::Get, Method::Create] {
            cases.push((
                format!("{} (no warm-up)", m.function()),
                m.function(),
                vec![("CONVERSATIONS_WARM_UP", "off")],
                Some(m),
            ));
        }
        let mut samples: Vec<(Vec<Duration>, Vec<Duration>)> =
            vec![Default::default(); cases.len()];
        // Round-robin, so that whatever else the machine does spreads evenly over the functions.
        for _ in 0..self.settings.cold_starts {
            for (i, (_, function, extra, method)) in cases.iter().enumerate() {
                let (event, expected) = match (method, *function) {
                    (Some(m), _) => (fixture.event(*m)?, Some(m.expected())),
                    (None, "purge-messages") => (purge.clone(), None),
                    (None, _) => (hello.clone(), None),
                };
                let (init, first) = self.cold_start(function, extra, &event, expected).await?;
                samples[i].0.push(init);
                samples[i].1.push(first);
            }
        }
        let floor = Summary::of(&samples[0].0).p50;
        Ok(Value::Array(
            cases
                .iter()
                .zip(samples)
                .map(|((name, ..), (init, first))| {
                    let (init, first) = (Summary::of(&init), Summary::of(&first));
                    json!({
                        "function": name,
                        "init": init.json(),
                        "init_and_first_request": first.json(),
                        "init_ratio": round(init.p50 / floor),
                    })
                })
                .collect(),
        ))
    }

    async fn warm(&self, fixture: &Fixture) -> Result<Value> {
        let n = self.settings.warm;
        let mut rows = Vec::new();
        // The floor of the runtime loop itself: a function that does nothing. It keeps running
        // beside each method's function: every iteration invokes it too, so that each raw
        // sample has a loop sample of the same moment (their sum is the floor of a function
        // that makes the raw calls and nothing else).
        let hello_api = RuntimeApi::start().await.map_err(|e| e.to_string())?;
        let hello = self.spawn("hello-world", &hello_api, &self.env, &[])?;
        let mut loop_floor = Vec::new();
        for i in 0..n + 5 {
            let outcome = self.invoke(&hello_api, &json!({})).await?;
            if i >= 5 {
                loop_floor.push(outcome.latency());
            }
        }
        let hello_rss = process::peak_rss(&hello);
        let loop_floor = Summary::of(&loop_floor);
        for m in Method::ALL {
            let api = RuntimeApi::start().await.map_err(|e| e.to_string())?;
            let child = self.spawn(m.function(), &api, &self.env, &[])?;
            let (mut function, mut raw, mut raw_and_loop) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..n + 5 {
                // Interleaved, so every series sees the same machine.
                let started = Instant::now();
                let made = fixture.raw(m).await?;
                let raw_time = started.elapsed();
                let outcome = self.invoke(&api, &fixture.event(m)?).await?;
                check(m.function(), m.expected(), &outcome.json())?;
                let empty = self.invoke(&hello_api, &json!({})).await?;
                if i >= 5 {
                    function.push(outcome.latency());
                    if made {
                        raw.push(raw_time);
                        raw_and_loop.push(raw_time + empty.latency());
                    }
                }
            }
            let rss = process::peak_rss(&child);
            process::stop(child).await;
            let (f, r, rl) = (
                Summary::of(&function),
                Summary::of(&raw),
                Summary::of(&raw_and_loop),
            );
            let floor = if raw.is_empty() {
                loop_floor.p50
            } else {
                r.p50
            };
            rows.push(json!({
                "method": m.label(),
                "function": m.function(),
                "function_latency": f.json(),
                "raw_sdk_latency": if raw.is_empty() { Value::Null } else { r.json() },
                "p50_ratio": round(f.p50 / floor),
                "ratio_against": if raw.is_empty() { "runtime loop floor" } else { "raw SDK calls" },
                // The raw calls plus an empty function's trip through the runtime loop, sample
                // by sample: what no function making these calls can go under.
                "raw_sdk_and_loop_latency": if raw.is_empty() { Value::Null } else { rl.json() },
                "p50_ratio_with_loop": if raw.is_empty() { Value::Null } else { json!(round(f.p50 / rl.p50)) },
                "p50_over_raw_and_loop_ms": if raw.is_empty() { Value::Null } else { json!(round(f.p50 - rl.p50)) },
                "peak_rss_bytes": rss,
            }));
        }
        process::stop(hello).await;
        Ok(json!({
            "invocations": n,
            "runtime_loop_floor": loop_floor.json(),
            "hello_world_peak_rss_bytes": hello_rss,
            "methods": rows,
        }))
    }

    async fn invoke(&self, api: &RuntimeApi, event: &Value) -> Result<runtime_api::Outcome> {
        let outcome = tokio::time::timeout(TIMEOUT, api.invoke(event))
            .await
            .map_err(|_| "an invocation timed out".to_owned())??;
        if !outcome.ok {
            return Err(format!(
                "invocation error: {}",
                String::from_utf8_lossy(&outcome.body)
            ));
        }
        Ok(outcome)
    }

    async fn cost(&self, fixture: &Fixture) -> Result<Value> {
        let upstream = self.env.dynamodb.clone();
        let proxy = proxy::Proxy::start(upstream)
            .await
            .map_err(|e| e.to_string())?;
        let env = Env {
            dynamodb: proxy.endpoint().to_owned(),
            table: self.env.table.clone(),
        };
        let mut rows = Vec::new();
        for m in Method::ALL {
            let api = RuntimeApi::start().await.map_err(|e| e.to_string())?;
            let started = Instant::now();
            let child = self.spawn(m.function(), &api, &env, &[])?;
            tokio::time::timeout(TIMEOUT, api.first_poll_after(started))
                .await
                .map_err(|_| format!("{} did not start", m.function()))?;
            let init_calls = proxy.take();
            let outcome = self.invoke(&api, &fixture.event(m)?).await?;
            check(m.function(), m.expected(), &outcome.json())?;
            proxy.take();
            let mut tally = proxy::Tally::default();
            for _ in 0..self.settings.cost {
                let outcome = self.invoke(&api, &fixture.event(m)?).await?;
                check(m.function(), m.expected(), &outcome.json())?;
                tally.add(proxy.take());
            }
            process::stop(child).await;
            let mut row = serde_json::Map::new();
            row.insert("method".into(), m.label().into());
            row.insert("function".into(), m.function().into());
            row.extend(tally.json());
            row.insert(
                "init_operations".into(),
                json!(
                    init_calls
                        .iter()
                        .map(|c| c.operation.clone())
                        .collect::<Vec<_>>()
                ),
            );
            rows.push(Value::Object(row));
        }
        Ok(Value::Array(rows))
    }

    async fn scale(&self) -> Result<Value> {
        let s = &self.settings;
        let small = fixtures::owner("scale-100")?;
        let large = fixtures::owner("scale-large")?;
        self.db.seed(&small, 100).await?;
        self.db.seed(&large, s.scale_conversations).await?;
        let per_owner = 100;
        for o in 0..s.scale_others.div_ceil(per_owner) {
            self.db
                .seed(&fixtures::owner(&format!("scale-other-{o}"))?, per_owner)
                .await?;
        }
        let msgs = fixtures::owner("scale-messages")?;
        let few = self.db.seed_with_messages(&msgs, 10).await?;
        let fifty = self.db.seed_with_messages(&msgs, 50).await?;
        let many = self.db.seed_with_messages(&msgs, s.scale_messages).await?;

        let list = HttpRequest::new("GET", "/v1/conversations");
        let lists = self
            .pairs(
                "list-conversations",
                200,
                &list.event(small.as_str()),
                &list.event(large.as_str()),
            )
            .await?;
        let get = |c: &conversations::domain::conversation::Conversation| {
            HttpRequest::new("GET", format!("/v1/conversations/{}", c.id.as_str()))
                .event(msgs.as_str())
        };
        let gets = self
            .pairs("get-conversation", 200, &get(&few), &get(&many))
            .await?;
        let append = |c: &conversations::domain::conversation::Conversation| {
            HttpRequest::new(
                "POST",
                format!("/v1/conversations/{}/messages", c.id.as_str()),
            )
            .body(json!({"type": "USER", "content": "scale"}))
            .event(msgs.as_str())
        };
        let appends = self
            .pairs("append-message", 201, &append(&few), &append(&many))
            .await?;
        // The reads of a long conversation, against a short one that holds as many messages as
        // the read returns: only the conversation's size differs.
        type Conversation = conversations::domain::conversation::Conversation;
        let messages = |c: &Conversation, query: &[(&'static str, &str)]| {
            let mut request = HttpRequest::new(
                "GET",
                format!("/v1/conversations/{}/messages", c.id.as_str()),
            );
            for (k, v) in query {
                request = request.query(k, *v);
            }
            request.event(msgs.as_str())
        };
        let last_50 = [("orderBy", "order desc"), ("pageSize", "50")];
        let lasts = self
            .pairs(
                "list-messages",
                200,
                &messages(&fifty, &last_50),
                &messages(&many, &last_50),
            )
            .await?;
        let middle = s.scale_messages / 2;
        let (lo, hi) = (middle + 1, middle + 10);
        let range_many = format!("order >= {lo} AND order <= {hi}");
        let ranges = self
            .pairs(
                "list-messages",
                200,
                &messages(&few, &[("filter", "order >= 1 AND order <= 10")]),
                &messages(&many, &[("filter", range_many.as_str())]),
            )
            .await?;
        let one = |c: &Conversation, order: u64| {
            HttpRequest::new(
                "GET",
                format!("/v1/conversations/{}/messages/{order}", c.id.as_str()),
            )
            .event(msgs.as_str())
        };
        let ones = self
            .pairs("get-message", 200, &one(&few, 5), &one(&many, middle))
            .await?;
        let recent =
            HttpRequest::new("GET", "/v1/conversations").query("orderBy", "lastUsedTime desc");
        let recents = self
            .pairs(
                "list-conversations",
                200,
                &recent.event(small.as_str()),
                &recent.event(large.as_str()),
            )
            .await?;
        let row = |what: &str, small: &str, large: &str, (a, b): (Summary, Summary)| {
            json!({
                "what": what,
                "small_case": small,
                "large_case": large,
                "small": a.json(),
                "large": b.json(),
                "p50_ratio": round(b.p50 / a.p50),
            })
        };
        Ok(json!({
            "other_owners_items": s.scale_others.div_ceil(per_owner) * per_owner,
            "rows": [
                row("list first page", "owner with 100 conversations",
                    &format!("owner with {} conversations", s.scale_conversations), lists),
                row("get", "conversation with 10 messages",
                    &format!("conversation with {} messages", s.scale_messages), gets),
                row("append", "conversation with 10 messages",
                    &format!("conversation with {} messages", s.scale_messages), appends),
                row("list messages, the last 50 newest first", "conversation with 50 messages",
                    &format!("conversation with {} messages", s.scale_messages), lasts),
                row("list messages, 10 by order range", "orders 1–10 of 10",
                    &format!("orders {lo}–{hi} of {}", s.scale_messages), ranges),
                row("get message by order", "order 5 of 10",
                    &format!("order {middle} of {}", s.scale_messages), ones),
                row("list by lastUsedTime, first page", "owner with 100 conversations",
                    &format!("owner with {} conversations", s.scale_conversations), recents),
            ]
        }))
    }

    /// p50 figures of two events sent alternately to one process of `function`.
    async fn pairs(
        &self,
        function: &str,
        expected: u16,
        a: &Value,
        b: &Value,
    ) -> Result<(Summary, Summary)> {
        let api = RuntimeApi::start().await.map_err(|e| e.to_string())?;
        let child = self.spawn(function, &api, &self.env, &[])?;
        let (mut sa, mut sb) = (Vec::new(), Vec::new());
        for i in 0..self.settings.scale_iterations + 5 {
            for (event, samples) in [(a, &mut sa), (b, &mut sb)] {
                let outcome = self.invoke(&api, event).await?;
                check(function, expected, &outcome.json())?;
                if i >= 5 {
                    samples.push(outcome.latency());
                }
            }
        }
        process::stop(child).await;
        Ok((Summary::of(&sa), Summary::of(&sb)))
    }

    async fn throughput(&self) -> Result<Value> {
        let owner = fixtures::owner("bench-throughput")?;
        let most = self.settings.levels.iter().copied().max().unwrap_or(1);
        let ids: Vec<String> = self
            .db
            .seed(&owner, most)
            .await?
            .into_iter()
            .map(|c| c.id.as_str().to_owned())
            .collect();
        let mut rows = Vec::new();
        for (method, function, expected) in [
            ("get", "get-conversation", 200),
            ("patch", "update-conversation", 200),
        ] {
            for &clients in &self.settings.levels {
                let api =
                    std::sync::Arc::new(RuntimeApi::start().await.map_err(|e| e.to_string())?);
                let mut children = Vec::new();
                for _ in 0..clients {
                    children.push(self.spawn(function, &api, &self.env, &[])?);
                }
                let event = |client: usize, n: usize| {
                    let path = format!("/v1/conversations/{}", ids[client]);
                    let request = match method {
                        "get" => HttpRequest::new("GET", path),
                        _ => HttpRequest::new("PATCH", path)
                            .query("updateMask", "displayName")
                            .body(json!({"displayName": format!("throughput {n}")})),
                    };
                    request.event(owner.as_str())
                };
                // Every process started and warm before the clock runs.
                for round in 0..3 {
                    let mut warm = tokio::task::JoinSet::new();
                    for c in 0..clients {
                        let (api, e) = (api.clone(), event(c, round));
                        warm.spawn(async move { api.invoke(&e).await });
                    }
                    while let Some(done) = warm.join_next().await {
                        done.map_err(|e| e.to_string())??;
                    }
                }
                let deadline = Instant::now() + self.settings.throughput;
                let started = Instant::now();
                let mut running = tokio::task::JoinSet::new();
                for c in 0..clients {
                    let api = api.clone();
                    let events: Vec<Value> = (0..64).map(|n| event(c, n)).collect();
                    running.spawn(async move {
                        let (mut done, mut failed, mut latencies) = (0u64, 0u64, Vec::new());
                        while Instant::now() < deadline {
                            let e = &events[(done + failed) as usize % events.len()];
                            match api.invoke(e).await {
                                Ok(o) if o.ok && status(&o.json()) == expected => {
                                    done += 1;
                                    latencies.push(o.latency());
                                }
                                _ => failed += 1,
                            }
                        }
                        (done, failed, latencies)
                    });
                }
                let (mut done, mut failed, mut latencies) = (0, 0, Vec::new());
                while let Some(r) = running.join_next().await {
                    let (d, f, l) = r.map_err(|e| e.to_string())?;
                    done += d;
                    failed += f;
                    latencies.extend(l);
                }
                let elapsed = started.elapsed().as_secs_f64();
                for child in children {
                    process::stop(child).await;
                }
                if failed > 0 {
                    return Err(format!(
                        "{failed} {method} requests failed at {clients} clients"
                    ));
                }
                rows.push(json!({
                    "method": method,
                    "clients": clients,
                    "requests": done,
                    "seconds": round(elapsed),
                    "requests_per_second": round(done as f64 / elapsed),
                    "latency": Summary::of(&latencies).json(),
                }));
            }
        }
        Ok(Value::Array(rows))
    }
}

fn check(function: &str, expected: u16, response: &Value) -> Result<()> {
    let got = status(response);
    if got == expected {
        Ok(())
    } else {
        Err(format!(
            "{function} answered {got}, not {expected}: {}",
            response["body"]
        ))
    }
}
