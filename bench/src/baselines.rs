//! What users would pick instead, under the same Runtime API harness and against the same table:
//! get-conversation and create-conversation in Python 3 (boto3 and awslambdaric,
//! bench/baselines/python) and in Node.js (the AWS SDK v3 and the Runtime API loop the managed
//! runtime runs, bench/baselines/node), next to ours. Init, init + first request, warm p50/p99 and
//! peak RSS of each, and our ratio to each. `BENCH_PYTHON` and `BENCH_NODE` (with
//! `BENCH_NODE_MODULES`) name what `make bench` installs; without them the scenario says why it
//! did not run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::events;
use crate::fixtures::{Fixture, Method};
use crate::process;
use crate::runtime_api::RuntimeApi;
use crate::stats::{Summary, round};
use crate::{Bench, Result, TIMEOUT, check};

/// A baseline's program, arguments, folder, extra environment and log name.
type Invocation<'a> = (
    &'a PathBuf,
    Vec<String>,
    &'a str,
    Vec<(&'a str, &'a str)>,
    String,
);

/// One implementation of a method.
enum Launch {
    /// Our function's binary.
    Ours(&'static str),
    /// `python -m awslambdaric handler.<name>` in bench/baselines/python.
    Python {
        python: PathBuf,
        handler: &'static str,
    },
    /// `node runtime.cjs <name>` in bench/baselines/node, its packages in `modules`.
    Node {
        node: PathBuf,
        modules: String,
        handler: &'static str,
    },
}

impl Launch {
    fn name(&self) -> String {
        match self {
            Launch::Ours(f) => format!("ours ({f})"),
            Launch::Python { handler, .. } => {
                format!("Python 3 + boto3 + awslambdaric ({handler})")
            }
            Launch::Node { handler, .. } => format!("Node.js + AWS SDK v3 ({handler})"),
        }
    }

    fn key(&self) -> &'static str {
        match self {
            Launch::Ours(_) => "ours",
            Launch::Python { .. } => "python",
            Launch::Node { .. } => "node",
        }
    }
}

impl Bench {
    fn launch(&self, launch: &Launch, api: &RuntimeApi) -> Result<Child> {
        let (program, args, root, extra, log): Invocation<'_> = match launch {
            Launch::Ours(function) => return self.spawn(function, api, &self.env, &[]),
            Launch::Python { python, handler } => {
                let root = concat!(env!("CARGO_MANIFEST_DIR"), "/baselines/python");
                (
                    python,
                    vec![
                        "-m".into(),
                        "awslambdaric".into(),
                        format!("handler.{handler}"),
                    ],
                    root,
                    vec![("LAMBDA_TASK_ROOT", root), ("PYTHONDONTWRITEBYTECODE", "1")],
                    format!("python-{handler}"),
                )
            }
            Launch::Node {
                node,
                modules,
                handler,
            } => {
                let root = concat!(env!("CARGO_MANIFEST_DIR"), "/baselines/node");
                (
                    node,
                    vec!["runtime.cjs".into(), (*handler).to_owned()],
                    root,
                    vec![("LAMBDA_TASK_ROOT", root), ("NODE_PATH", modules.as_str())],
                    format!("node-{handler}"),
                )
            }
        };
        let mut command = Command::new(program);
        command.args(&args).current_dir(root);
        process::spawn_command(
            command,
            &log,
            &api.address(),
            &self.env,
            &extra,
            &self.log(&log),
        )
        .map_err(|e| format!("starting {}: {e}", program.display()))
    }

    /// Cold starts, then warm invocations of one implementation.
    async fn baseline(&self, launch: &Launch, m: Method, fixture: &Fixture) -> Result<Value> {
        let (mut init, mut first) = (Vec::new(), Vec::new());
        for _ in 0..self.settings.cold_starts {
            let api = RuntimeApi::start().await.map_err(|e| e.to_string())?;
            let started = Instant::now();
            let child = self.launch(launch, &api)?;
            let event = fixture.event(m)?;
            let measured = tokio::time::timeout(TIMEOUT, async {
                tokio::join!(api.first_poll_after(started), api.invoke(&event))
            })
            .await;
            process::stop(child).await;
            let (polled, outcome) =
                measured.map_err(|_| format!("{} did not start", launch.name()))?;
            let outcome = outcome?;
            check(&launch.name(), m.expected(), &outcome.json())?;
            check_whole(&launch.name(), &outcome.json())?;
            init.push(polled - started);
            first.push(outcome.answered - started);
        }
        let api = RuntimeApi::start().await.map_err(|e| e.to_string())?;
        let child = self.launch(launch, &api)?;
        let mut warm: Vec<Duration> = Vec::new();
        for i in 0..self.settings.warm + 5 {
            let outcome = self.invoke(&api, &fixture.event(m)?).await?;
            check(&launch.name(), m.expected(), &outcome.json())?;
            if i == 0 {
                check_whole(&launch.name(), &outcome.json())?;
            }
            if i >= 5 {
                warm.push(outcome.latency());
            }
        }
        let rss = process::peak_rss(&child);
        process::stop(child).await;
        let (init, first, warm) = (Summary::of(&init), Summary::of(&first), Summary::of(&warm));
        Ok(json!({
            "implementation": launch.name(),
            "init": init.json(),
            "init_and_first_request": first.json(),
            "warm": warm.json(),
            "peak_rss_bytes": rss,
        }))
    }

    /// Ours and each baseline, for get and create.
    pub(crate) async fn baselines(&self) -> Result<Value> {
        let python = std::env::var_os("BENCH_PYTHON").map(PathBuf::from);
        let node = std::env::var_os("BENCH_NODE").map(PathBuf::from);
        let modules = std::env::var("BENCH_NODE_MODULES").ok();
        if python.is_none() && node.is_none() {
            return Ok(json!({
                "skipped": "BENCH_PYTHON and BENCH_NODE are unset (make bench installs the baselines)"
            }));
        }
        let uses = (self.settings.cold_starts + self.settings.warm + 5) * 3 + 5;
        let fixture = Fixture::seed(self.db.clone(), uses).await?;
        let mut rows = Vec::new();
        for (m, handler) in [(Method::Get, "get"), (Method::Create, "create")] {
            let mut launches = vec![Launch::Ours(m.function())];
            if let Some(python) = &python {
                launches.push(Launch::Python {
                    python: python.clone(),
                    handler,
                });
            }
            if let (Some(node), Some(modules)) = (&node, &modules) {
                launches.push(Launch::Node {
                    node: node.clone(),
                    modules: modules.clone(),
                    handler,
                });
            }
            let mut measured = Vec::new();
            for launch in &launches {
                measured.push((launch.key(), self.baseline(launch, m, &fixture).await?));
            }
            let ours = measured[0].1.clone();
            let ratio = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
                (Some(o), Some(t)) if t > 0.0 => json!(round(o / t)),
                _ => Value::Null,
            };
            let mut over = serde_json::Map::new();
            for (key, theirs) in &measured[1..] {
                let stat = |k: &str, s: &str| ratio(&ours[k][s], &theirs[k][s]);
                over.insert(
                    (*key).to_owned(),
                    json!({
                        "init_p50": stat("init", "p50_ms"),
                        "init_and_first_request_p50": stat("init_and_first_request", "p50_ms"),
                        "warm_p50": stat("warm", "p50_ms"),
                        "warm_p99": stat("warm", "p99_ms"),
                        "peak_rss": ratio(&ours["peak_rss_bytes"], &theirs["peak_rss_bytes"]),
                    }),
                );
            }
            rows.push(json!({
                "method": m.label(),
                "implementations": measured.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
                "ours_over": over,
            }));
        }
        Ok(Value::Array(rows))
    }
}

/// Every implementation answers the whole conversation: its `agents` (the seeded conversation's
/// and the create request's `["agent-1"]`) are in the body item, so an answer without them read
/// or wrote the head alone, which is not the method.
fn check_whole(implementation: &str, response: &Value) -> Result<()> {
    let body = events::body(response);
    if body["agents"] == json!(["agent-1"]) {
        Ok(())
    } else {
        Err(format!(
            "{implementation} answered without the conversation's agents: {body}"
        ))
    }
}
