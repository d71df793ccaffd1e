//! Function processes as Lambda starts them: a clean environment with the variables the Lambda
//! service sets, the runtime API address, and the stack's configuration.

use std::path::Path;
use std::process::Stdio;

use tokio::process::{Child, Command};

/// Where a function finds its world.
#[derive(Debug, Clone)]
pub struct Env {
    /// `AWS_ENDPOINT_URL_DYNAMODB`.
    pub dynamodb: String,
    /// `CONVERSATIONS_TABLE`.
    pub table: String,
}

/// Starts `bin` polling the runtime API at `runtime_api`; its output is appended to `log`.
pub fn spawn(
    bin: &Path,
    runtime_api: &str,
    env: &Env,
    extra: &[(&str, &str)],
    log: &Path,
) -> std::io::Result<Child> {
    let name = bin
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("function");
    spawn_command(Command::new(bin), name, runtime_api, env, extra, log)
}

/// Starts `command` (another runtime's interpreter and its arguments) as the function `name`.
pub fn spawn_command(
    mut command: Command,
    name: &str,
    runtime_api: &str,
    env: &Env,
    extra: &[(&str, &str)],
    log: &Path,
) -> std::io::Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_ENDPOINT_URL_DYNAMODB", &env.dynamodb)
        .env("CONVERSATIONS_TABLE", &env.table)
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .kill_on_drop(true);
    command.spawn()
}

/// The peak resident set size of a live process, in bytes (`VmHWM`).
pub fn peak_rss(child: &Child) -> Option<u64> {
    let pid = child.id()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Stops a process and waits for it.
pub async fn stop(mut child: Child) {
    let _ = child.kill().await;
}
