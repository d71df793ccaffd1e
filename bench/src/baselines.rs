//! What users would pick instead, under the same Runtime API harness and against the same table:
//! get-conversation and create-conversation in Python 3 (boto3 and awslambdaric,
//! bench/baselines/python), next to ours. Init, init + first request, warm p50/p99 and peak RSS of
//! each, and our ratio to each. `BENCH_PYTHON` names the interpreter of the environment
//! `make bench` installs them into; without it the scenario says why it did not run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::fixtures::{Fixture, Method};
use crate::process;
use crate::runtime_api::RuntimeApi;
use crate::stats::{Summary, round};
use crate::{Bench, Result, TIMEOUT, check};

/// One implementation of a method.
enum Launch {
    /// Our function's binary.
    Ours(&'static str),
    /// `python -m awslambdaric handler.<name>` in bench/baselines/python.
    Python {
        python: PathBuf,
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
        }
    }
}

impl Bench {
    fn launch(&self, launch: &Launch, api: &RuntimeApi) -> Result<Child> {
        match launch {
            Launch::Ours(function) => self.spawn(function, api, &self.env, &[]),
            Launch::Python { python, handler } => {
                let root = concat!(env!("CARGO_MANIFEST_DIR"), "/baselines/python");
                let mut command = Command::new(python);
                command
                    .args(["-m", "awslambdaric", &format!("handler.{handler}")])
                    .current_dir(root);
                process::spawn_command(
                    command,
                    &format!("python-{handler}"),
                    &api.address(),
                    &self.env,
                    &[("LAMBDA_TASK_ROOT", root), ("PYTHONDONTWRITEBYTECODE", "1")],
                    &self.log(&format!("python-{handler}")),
                )
                .map_err(|e| format!("starting {}: {e}", python.display()))
            }
        }
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
            init.push(polled - started);
            first.push(outcome.answered - started);
        }
        let api = RuntimeApi::start().await.map_err(|e| e.to_string())?;
        let child = self.launch(launch, &api)?;
        let mut warm: Vec<Duration> = Vec::new();
        for i in 0..self.settings.warm + 5 {
            let outcome = self.invoke(&api, &fixture.event(m)?).await?;
            check(&launch.name(), m.expected(), &outcome.json())?;
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
        let Some(python) = std::env::var_os("BENCH_PYTHON").map(PathBuf::from) else {
            return Ok(
                json!({"skipped": "BENCH_PYTHON is unset (make bench installs the baselines)"}),
            );
        };
        let uses = (self.settings.cold_starts + self.settings.warm + 5) * 2 + 5;
        let fixture = Fixture::seed(self.db.clone(), uses).await?;
        let mut rows = Vec::new();
        for (m, handler) in [(Method::Get, "get"), (Method::Create, "create")] {
            let ours = self
                .baseline(&Launch::Ours(m.function()), m, &fixture)
                .await?;
            let theirs = self
                .baseline(
                    &Launch::Python {
                        python: python.clone(),
                        handler,
                    },
                    m,
                    &fixture,
                )
                .await?;
            let ratio = |key: &str, stat: &str| {
                let (o, t) = (ours[key][stat].as_f64(), theirs[key][stat].as_f64());
                match (o, t) {
                    (Some(o), Some(t)) if t > 0.0 => json!(round(o / t)),
                    _ => Value::Null,
                }
            };
            let rss_ratio = match (
                ours["peak_rss_bytes"].as_f64(),
                theirs["peak_rss_bytes"].as_f64(),
            ) {
                (Some(o), Some(t)) if t > 0.0 => json!(round(o / t)),
                _ => Value::Null,
            };
            rows.push(json!({
                "method": m.label(),
                "implementations": [ours, theirs],
                "ours_over_python": {
                    "init_p50": ratio("init", "p50_ms"),
                    "init_and_first_request_p50": ratio("init_and_first_request", "p50_ms"),
                    "warm_p50": ratio("warm", "p50_ms"),
                    "warm_p99": ratio("warm", "p99_ms"),
                    "peak_rss": rss_ratio,
                },
            }));
        }
        Ok(Value::Array(rows))
    }
}
