//! The `conversations` command line (client/src/bin/conversations) end to end, as a user runs
//! it against the service (`make test`: cargo lambda watch; `make staging-test`: a stage):
//! export and import round-trip a 2 000-message transcript; an import killed while a batch is in
//! flight, or stopped by lost answers, and run again (with the same or another `--chunk`) adds
//! nothing twice and leaves no gap; `tail --follow` prints what another process appends, and
//! stops once the conversation is completed or deleted; errors are one line with a non-zero exit
//! status. Revision 3's subcommands: pop the last message, clear all but the last N, purge and
//! create again under the same id (nothing old visible), and import into a purged id.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use api_tests::api_proxy::{ApiProxy, Fault, Rule};
use api_tests::http_client::{Caller, Target};
use api_tests::id;
use conversations_client::{
    BatchOptions, Client, Conversation, ConversationInput, CreateOptions, DeleteOptions,
    ListMessages, Message, MessageInput, MessageType, ToolCall, View,
};
use futures_util::TryStreamExt;
use serde_json::json;

fn target() -> Target {
    Target::from_env().expect(
        "neither API_BASE_URL nor STAGING_API_URL is set: run these tests with `make test` or \
         `make staging-test`",
    )
}

/// The `conversations` binary of this build (target/<profile>/conversations), which `cargo
/// test --workspace` builds with the client crate.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = dir.join("conversations");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --workspace` (make test does)",
        path.display()
    );
    path
}

fn cli(t: &Target, caller: &Caller) -> Command {
    cli_at(&t.base, caller)
}

/// The command line calling the API at `base` (a proxy in front of it).
fn cli_at(base: &str, caller: &Caller) -> Command {
    let mut command = Command::new(binary());
    command
        .env_remove("CONVERSATIONS_TOKEN")
        .env_remove("CONVERSATIONS_OWNER")
        .envs(caller.cli_env(base));
    command
}

/// A transcript of `n` messages of every kind: user turns, tool calls with their answers,
/// metadata.
fn transcript(n: usize) -> Vec<MessageInput> {
    (0..n)
        .map(|k| match k % 4 {
            0 => MessageInput::new(MessageType::User, format!("question {k}: ünïcode ✓")),
            1 => {
                let mut m = MessageInput::new(MessageType::Agent, "");
                m.tool_calls = Some(vec![ToolCall {
                    id: format!("call-{k}"),
                    name: "search".into(),
                    arguments: json!({"q": k}).as_object().cloned().unwrap_or_default(),
                }]);
                m
            }
            2 => {
                let mut m = MessageInput::new(MessageType::Tool, format!("result {k}"));
                m.tool_call_id = Some(format!("call-{}", k - 1));
                m
            }
            _ => {
                let mut m = MessageInput::new(MessageType::Agent, format!("answer {k}\nline 2"));
                m.metadata = json!({"confidence": 0.9, "k": k}).as_object().cloned();
                m
            }
        })
        .collect()
}

/// A conversation of `messages`, appended in batches of 50.
async fn seeded(client: &Client, messages: &[MessageInput]) -> String {
    let mut input = ConversationInput::with_agents(["bot", "human"]);
    input.display_name = Some("A long call".into());
    input.labels = Some([("channel".to_owned(), "voice".to_owned())].into());
    let i = id();
    client
        .create_conversation(&input, CreateOptions::with_id(&i))
        .await
        .expect("create");
    for batch in messages.chunks(50) {
        client
            .batch_append_messages(&i, batch, BatchOptions::default())
            .await
            .expect("batch");
    }
    i
}

async fn all_messages(client: &Client, i: &str) -> Vec<Message> {
    client
        .list_messages(
            i,
            ListMessages {
                page_size: Some(1000),
                ..ListMessages::default()
            },
        )
        .try_collect()
        .await
        .expect("list messages")
}

/// What an import must keep of each message: its order and every writable field.
fn writable(messages: &[Message]) -> Vec<(Option<u64>, Option<MessageInput>)> {
    messages.iter().map(|m| (m.order, m.to_input())).collect()
}

async fn delete(client: &Client, ids: &[&str]) {
    for i in ids {
        client
            .delete_conversation(i, DeleteOptions::default())
            .await
            .expect("clean up");
    }
}

#[tokio::test]
async fn export_then_import_under_a_new_id_round_trips_a_2000_message_transcript() {
    let t = target();
    let (alice, _) = t.two_callers();
    let client = alice.client(&t.base);
    let messages = transcript(2000);
    let original = seeded(&client, &messages).await;
    client
        .complete_conversation(&original, None)
        .await
        .expect("complete");

    let dir = tempdir();
    let file = dir.join("transcript.jsonl");
    let export = cli(&t, &alice)
        .args(["export", &original, "--output"])
        .arg(&file)
        .output()
        .expect("run export");
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let text = std::fs::read_to_string(&file).expect("the export");
    assert_eq!(
        text.lines().count(),
        2001,
        "the conversation, then every message"
    );

    let copy = id();
    let import = cli(&t, &alice)
        .args(["import", "--id", &copy, "--json"])
        .arg(&file)
        .output()
        .expect("run import");
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let answered: conversations_client::Conversation =
        serde_json::from_slice(&import.stdout).expect("the imported conversation as JSON");
    assert_eq!(answered.message_count, Some(2000));

    let (from, to) = (
        client
            .get_conversation(&original, View::Basic)
            .await
            .expect("get"),
        client
            .get_conversation(&copy, View::Basic)
            .await
            .expect("get"),
    );
    assert_eq!(
        to.to_input(),
        from.to_input(),
        "every writable field copied"
    );
    assert!(
        to.is_completed(),
        "a completed transcript is imported completed"
    );
    let (a, b) = (
        all_messages(&client, &original).await,
        all_messages(&client, &copy).await,
    );
    assert_eq!(writable(&b), writable(&a));
    assert_eq!(b.len(), 2000);
    delete(&client, &[&original, &copy]).await;
}

/// Exports conversation `i` into a fresh file.
fn export(t: &Target, caller: &Caller, i: &str) -> PathBuf {
    let file = tempdir().join("transcript.jsonl");
    let export = cli(t, caller)
        .args(["export", i, "-o"])
        .arg(&file)
        .output()
        .expect("run export");
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    file
}

async fn count(client: &Client, i: &str) -> u64 {
    match client.get_conversation(i, View::Basic).await {
        Ok(c) => c.message_count.unwrap_or(0),
        Err(e) if e.is_not_found() => 0,
        Err(e) => panic!("{e}"),
    }
}

/// The orders held are 1..=n, each once, and the messages are the original's.
async fn exactly_once(client: &Client, copy: &str, original: &str, n: u64, what: &str) {
    let b = all_messages(client, copy).await;
    assert_eq!(
        b.iter()
            .map(|m| m.order.expect("order"))
            .collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>(),
        "{what}: no duplicate, no gap"
    );
    assert_eq!(
        writable(&b),
        writable(&all_messages(client, original).await),
        "{what}"
    );
}

// Two threads: the proxy serves while the test waits for the command line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_while_a_batch_is_in_flight_and_run_again_adds_nothing_twice() {
    let t = target();
    let (alice, _) = t.two_callers();
    let client = alice.client(&t.base);
    let messages = transcript(300);
    let original = seeded(&client, &messages).await;
    let file = export(&t, &alice, &original);
    let proxy = ApiProxy::start(&t.base).await;
    let copy = id();
    let batches = format!("/conversations/{copy}/messages/batch");

    // The eleventh batch reaches the service only 3 s after it was sent: the import is killed
    // while it is in flight, and the rerun reads a count without it, so the rerun sends that
    // range again — and only its key keeps the two from both being appended.
    proxy.inject(
        Rule::new("POST", Fault::Late(Duration::from_secs(3)))
            .path_ending(&batches)
            .after(10),
    );
    let mut first = cli_at(proxy.base(), &alice)
        .args(["import", "--chunk", "5", "--id", &copy])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the import");
    let started = Instant::now();
    while !proxy.requests().iter().any(|s| s.fault.is_some()) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the import never sent its eleventh batch"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill().expect("kill the import");
    first.wait().expect("reaped");
    assert_eq!(
        count(&client, &copy).await,
        50,
        "ten batches held, the eleventh still in flight"
    );

    let rerun = cli_at(proxy.base(), &alice)
        .args(["import", "--chunk", "5", "--id", &copy])
        .arg(&file)
        .output()
        .expect("run the import again");
    assert!(
        rerun.status.success(),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    proxy.settled().await;
    let sent: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|s| s.path().ends_with(&batches))
        .collect();
    let late = sent
        .iter()
        .find(|s| s.fault.is_some())
        .expect("the late batch");
    assert_eq!(
        late.status,
        Some(201),
        "the late batch landed, or was answered as the rerun's repeat"
    );
    exactly_once(&client, &copy, &original, 300, "after the rerun").await;
    let again: Vec<_> = sent
        .iter()
        .filter(|s| s.fault.is_none() && s.request_id() == late.request_id())
        .collect();
    assert_eq!(
        again.len(),
        1,
        "the rerun sent the late batch's messages again, with its key: {sent:#?}"
    );

    // A third run finds everything in place and adds nothing.
    let third = cli(&t, &alice)
        .args(["import", "--chunk", "5", "--id", &copy])
        .arg(&file)
        .output()
        .expect("run the import a third time");
    assert!(third.status.success());
    assert_eq!(count(&client, &copy).await, 300);
    delete(&client, &[&original, &copy]).await;
}

// Two threads: the proxy serves while the test waits for the command line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_stopped_partway_and_run_again_with_a_smaller_or_a_larger_chunk_adds_nothing_twice()
 {
    let t = target();
    let (alice, _) = t.two_callers();
    let client = alice.client(&t.base);
    let messages = transcript(60);
    let original = seeded(&client, &messages).await;
    let file = export(&t, &alice, &original);
    let proxy = ApiProxy::start(&t.base).await;

    for rerun_chunk in ["5", "10"] {
        let copy = id();
        // With --chunk 7, the fourth batch (messages 22-28) lands but every answer to it is
        // lost: the import stops, holding 28 messages — no multiple of 5 or 10.
        proxy.inject(
            Rule::new("POST", Fault::LoseAnswer)
                .path_ending(&format!("/conversations/{copy}/messages/batch"))
                .after(3)
                .times(4),
        );
        let first = cli_at(proxy.base(), &alice)
            .args(["import", "--chunk", "7", "--id", &copy])
            .arg(&file)
            .output()
            .expect("run the import");
        assert_eq!(
            first.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&first.stderr)
        );
        assert_eq!(count(&client, &copy).await, 28);

        let rerun = cli(&t, &alice)
            .args(["import", "--chunk", rerun_chunk, "--id", &copy])
            .arg(&file)
            .output()
            .expect("run the import again");
        assert!(
            rerun.status.success(),
            "--chunk {rerun_chunk}: {}",
            String::from_utf8_lossy(&rerun.stderr)
        );
        exactly_once(
            &client,
            &copy,
            &original,
            60,
            &format!("rerun with --chunk {rerun_chunk}"),
        )
        .await;
        delete(&client, &[&copy]).await;
    }
    delete(&client, &[&original]).await;
}

// Two threads: the proxy serves while the test waits for the command line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_resumed_after_messages_of_the_copy_were_deleted_or_cleared_adds_nothing_twice() {
    let t = target();
    let (alice, _) = t.two_callers();
    let client = alice.client(&t.base);
    let messages = transcript(60);
    let original = seeded(&client, &messages).await;
    let file = export(&t, &alice, &original);
    let proxy = ApiProxy::start(&t.base).await;
    let copy = id();
    // As above: the import stops holding orders 1-28.
    proxy.inject(
        Rule::new("POST", Fault::LoseAnswer)
            .path_ending(&format!("/conversations/{copy}/messages/batch"))
            .after(3)
            .times(4),
    );
    let first = cli_at(proxy.base(), &alice)
        .args(["import", "--chunk", "7", "--id", &copy])
        .arg(&file)
        .output()
        .expect("run the import");
    assert_eq!(first.status.code(), Some(1));
    // Someone pops message 5 and clears 1-3 of the copy: it holds 24 messages, up to order 28.
    client
        .delete_message(&copy, 5, Default::default())
        .await
        .expect("delete message");
    client
        .clear_messages(
            &copy,
            conversations_client::ClearOptions {
                through_order: Some(3),
                ..Default::default()
            },
        )
        .await
        .expect("clear");
    assert_eq!(count(&client, &copy).await, 24);

    let rerun = cli(&t, &alice)
        .args(["import", "--chunk", "10", "--id", &copy])
        .arg(&file)
        .output()
        .expect("run the import again");
    assert!(
        rerun.status.success(),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    // It went on after order 28, the highest held, not after the 24th message.
    let held = all_messages(&client, &copy).await;
    let expected: Vec<u64> = (4..=60).filter(|o| *o != 5).collect();
    assert_eq!(
        held.iter()
            .map(|m| m.order.expect("order"))
            .collect::<Vec<_>>(),
        expected,
        "no duplicate, no gap but what was removed"
    );
    let source = all_messages(&client, &original).await;
    let wanted: Vec<_> = source
        .iter()
        .filter(|m| m.order.is_some_and(|o| expected.contains(&o)))
        .cloned()
        .collect();
    assert_eq!(writable(&held), writable(&wanted));
    delete(&client, &[&original, &copy]).await;
}

#[tokio::test]
async fn a_hand_written_transcript_without_an_id_is_imported_once_however_often_it_is_run() {
    let t = target();
    let (alice, _) = t.two_callers();
    let client = alice.client(&t.base);
    let dir = tempdir();
    let file = dir.join("call.jsonl");
    let marker = id();
    std::fs::write(
        &file,
        format!(
            "{{\"agents\": [\"ivr\"], \"displayName\": \"{marker}\"}}\n\
             {{\"type\": \"USER\", \"content\": \"I want to cancel\"}}\n\
             \n\
             {{\"type\": \"AGENT\", \"content\": \"Sorry to hear that.\"}}\n"
        ),
    )
    .expect("write the transcript");
    let run = || {
        let out = cli(&t, &alice)
            .args(["import", "--json"])
            .arg(&file)
            .output()
            .expect("run import");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<conversations_client::Conversation>(&out.stdout)
            .expect("the imported conversation")
    };
    let (first, again) = (run(), run());
    assert_eq!(
        first.id(),
        again.id(),
        "the rerun found the same conversation"
    );
    assert_eq!(again.message_count, Some(2));
    assert_eq!(again.display_name.as_deref(), Some(marker.as_str()));
    let i = again.id().expect("id").to_owned();
    delete(&client, &[&i]).await;
}

/// `conversations tail ID --follow --json --last 2` at `base`, its lines read on a thread.
struct Tail {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Tail {
    fn start(base: &str, caller: &Caller, i: &str) -> Self {
        let mut child = cli_at(base, caller)
            .args([
                "tail",
                i,
                "--follow",
                "--json",
                "--last",
                "2",
                "--interval-ms",
                "100",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start tail");
        let stdout = child.stdout.take().expect("stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next message printed (at most 30 s away).
    fn next(&self) -> Message {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(30))
            .expect("tail printed a line");
        serde_json::from_str(&line).expect("a message as JSON")
    }

    /// Waits (at most 30 s) until tail exits by itself, and gives its status and every line it
    /// printed after those already read: read until its output closed, not until a moment.
    fn finish(mut self, why: &str) -> (std::process::ExitStatus, Vec<Message>) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("tail --follow did not stop after {why}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut rest = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(10)) {
                Ok(line) => rest.push(serde_json::from_str(&line).expect("a message as JSON")),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("tail's output never closed"),
            }
        }
        (status, rest)
    }
}

#[tokio::test]
async fn tail_follow_prints_what_another_process_appends_and_stops_when_the_conversation_completes()
{
    let t = target();
    let (alice, _) = t.two_callers();
    let client = alice.client(&t.base);
    let i = seeded(&client, &transcript(3)).await;
    let tail = Tail::start(&t.base, &alice, &i);
    assert_eq!(
        [tail.next().order, tail.next().order],
        [Some(2), Some(3)],
        "the last two first"
    );

    for n in 0..3 {
        client
            .append_message(
                &i,
                &MessageInput::new(MessageType::User, format!("live {n}")),
                None,
            )
            .await
            .expect("append");
    }
    let live: Vec<_> = (0..3).map(|_| tail.next()).collect();
    assert_eq!(
        live.iter()
            .map(|m| (m.order, m.content.as_deref()))
            .collect::<Vec<_>>(),
        [
            (Some(4), Some("live 0")),
            (Some(5), Some("live 1")),
            (Some(6), Some("live 2"))
        ]
    );

    client
        .complete_conversation(&i, None)
        .await
        .expect("complete");
    let (status, rest) = tail.finish("the conversation completed");
    assert!(status.success());
    assert_eq!(rest, [], "nothing more was printed");
    delete(&client, &[&i]).await;
}

// Two threads: the proxy serves while the test waits for tail's lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follow_prints_a_message_appended_just_before_the_conversation_completes() {
    let t = target();
    let (alice, _) = t.two_callers();
    let client = alice.client(&t.base);
    let i = seeded(&client, &transcript(3)).await;
    let proxy = ApiProxy::start(&t.base).await;
    let tail = Tail::start(proxy.base(), &alice, &i);
    assert_eq!([tail.next().order, tail.next().order], [Some(2), Some(3)]);

    // tail's next read of the conversation reaches the service only after the last message was
    // appended and the conversation completed: that poll must still print the message (a tail
    // that read the messages before the conversation would miss it and stop).
    proxy.inject(
        Rule::new("GET", Fault::Late(Duration::from_millis(700)))
            .path_ending(&format!("/conversations/{i}")),
    );
    let started = Instant::now();
    while !proxy.requests().iter().any(|s| s.fault.is_some()) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "tail stopped polling"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    client
        .append_message(
            &i,
            &MessageInput::new(MessageType::Agent, "last words"),
            None,
        )
        .await
        .expect("append");
    client
        .complete_conversation(&i, None)
        .await
        .expect("complete");
    let (status, rest) = tail.finish("the conversation completed");
    assert!(status.success());
    assert_eq!(
        rest.iter()
            .map(|m| (m.order, m.content.as_deref()))
            .collect::<Vec<_>>(),
        [(Some(4), Some("last words"))],
        "printed before it stopped"
    );
    delete(&client, &[&i]).await;
}

#[tokio::test]
async fn tail_follow_stops_when_the_conversation_is_deleted() {
    let t = target();
    let (alice, _) = t.two_callers();
    let client = alice.client(&t.base);
    let i = seeded(&client, &transcript(3)).await;
    let tail = Tail::start(&t.base, &alice, &i);
    assert_eq!([tail.next().order, tail.next().order], [Some(2), Some(3)]);
    client
        .append_message(&i, &MessageInput::new(MessageType::User, "bye"), None)
        .await
        .expect("append");
    assert_eq!(tail.next().content.as_deref(), Some("bye"));

    client
        .delete_conversation(&i, DeleteOptions::default())
        .await
        .expect("delete");
    let (status, rest) = tail.finish("the conversation was deleted");
    assert!(status.success());
    assert_eq!(rest, [], "nothing more was printed");
}

#[tokio::test]
async fn an_error_is_one_line_with_its_code_and_a_non_zero_exit_status() {
    let t = target();
    let (alice, _) = t.two_callers();
    let missing = cli(&t, &alice)
        .args(["get", &id()])
        .output()
        .expect("run get");
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("404 NOT_FOUND"), "{stderr}");
    assert!(stderr.contains("[request "), "{stderr}");

    let invalid = cli(&t, &alice)
        .args(["create", "--display-name", &"x".repeat(300)])
        .output()
        .expect("run create");
    assert_eq!(invalid.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert!(stderr.contains("422 INVALID_ARGUMENT"), "{stderr}");
    assert!(stderr.contains("agents (required)"), "{stderr}");
    assert!(stderr.contains("displayName"), "{stderr}");

    let usage = cli(&t, &alice)
        .args(["append"])
        .output()
        .expect("run append");
    assert_eq!(usage.status.code(), Some(2), "a usage error");
}

#[tokio::test]
async fn messages_last_and_after_print_the_asked_range_oldest_first() {
    let t = target();
    let (alice, _) = t.two_callers();
    let client = alice.client(&t.base);
    let i = seeded(&client, &transcript(12)).await;
    let orders = |args: &[&str]| -> Vec<u64> {
        let out = cli(&t, &alice)
            .args(["messages", &i, "--json"])
            .args(args)
            .output()
            .expect("run messages");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<Message>(l)
                    .expect("JSON")
                    .order
                    .expect("order")
            })
            .collect()
    };
    assert_eq!(orders(&["--last", "5"]), [8, 9, 10, 11, 12]);
    assert_eq!(orders(&["--after", "9"]), [10, 11, 12]);
    assert_eq!(orders(&["--after", "2", "--type", "USER"]), [5, 9]);
    assert_eq!(orders(&[]).len(), 12);
    let table = cli(&t, &alice)
        .args(["messages", &i, "--last", "1"])
        .output()
        .expect("run messages");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("AGENT") && text.contains("answer 11 line 2"),
        "{text}"
    );
    delete(&client, &[&i]).await;
}

/// Runs the command line with `args` as `caller`.
fn run(t: &Target, caller: &Caller, args: &[&str]) -> std::process::Output {
    cli(t, caller)
        .args(args)
        .output()
        .expect("run the command line")
}

/// The JSON that a successful run printed.
fn printed(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: not JSON: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The conversation that a successful run printed as JSON.
fn printed_conversation(out: &std::process::Output) -> Conversation {
    serde_json::from_value(printed(out)).expect("a conversation")
}

/// The message that a successful run printed as JSON.
fn printed_message(out: &std::process::Output) -> Message {
    serde_json::from_value(printed(out)).expect("a message")
}

/// The one line that a failed run printed on standard error (exit status 1), checked to hold
/// each of `parts`.
fn failed(out: &std::process::Output, parts: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for part in parts {
        assert!(stderr.contains(part), "{part} not in: {stderr}");
    }
}

/// The orders of the messages that `messages ID --json` prints.
fn listed_orders(t: &Target, caller: &Caller, i: &str) -> Vec<u64> {
    let out = run(t, caller, &["messages", i, "--json"]);
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Message>(l)
                .expect("a message")
                .order
                .expect("order")
        })
        .collect()
}

#[tokio::test]
async fn delete_message_pops_the_last_message_and_its_order_is_never_given_again() {
    let t = target();
    let (alice, _) = t.two_callers();
    let client = alice.client(&t.base);
    let i = seeded(&client, &transcript(3)).await;
    let last = client.get_message(&i, 3).await.expect("get message");
    let conversation = client.get_conversation(&i, View::Basic).await.expect("get");

    // A stale etag (the conversation's, not the message's) is refused.
    let etag = conversation.etag.as_deref().expect("etag");
    let stale = run(&t, &alice, &["delete-message", &i, "3", "--etag", etag]);
    failed(&stale, &["409 ABORTED"]);

    let popped = printed_message(&run(
        &t,
        &alice,
        &[
            "delete-message",
            &i,
            "3",
            "--etag",
            last.etag.as_deref().expect("etag"),
            "--json",
        ],
    ));
    assert_eq!(popped, last, "printed as it was");
    assert_eq!(listed_orders(&t, &alice, &i), [1, 2]);
    let again = run(&t, &alice, &["delete-message", &i, "3"]);
    failed(&again, &["404 NOT_FOUND", "[request "]);
    let next = printed_message(&run(
        &t,
        &alice,
        &["append", &i, "--content", "next turn", "--json"],
    ));
    assert_eq!(next.order, Some(4), "order 3 is not given again");
    let now = client.get_conversation(&i, View::Basic).await.expect("get");
    assert_eq!(now.message_count, Some(3));
    let table = run(&t, &alice, &["delete-message", &i, "4"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.status.success() && text.contains("next turn"),
        "{text}"
    );
    delete(&client, &[&i]).await;
}

#[tokio::test]
async fn clear_keeps_the_last_ten_messages_or_those_after_an_order() {
    let t = target();
    let (alice, _) = t.two_callers();
    let client = alice.client(&t.base);
    let i = seeded(&client, &transcript(25)).await;

    let kept = printed_conversation(&run(
        &t,
        &alice,
        &["clear", &i, "--keep-last", "10", "--json"],
    ));
    assert_eq!(kept.message_count, Some(10));
    assert_eq!(listed_orders(&t, &alice, &i), (16..=25).collect::<Vec<_>>());
    // Nothing precedes the last ten any more: nothing is written.
    let again = printed_conversation(&run(
        &t,
        &alice,
        &["clear", &i, "--keep-last", "10", "--json"],
    ));
    assert_eq!(again.etag, kept.etag, "nothing written");

    let etag = kept.etag.as_deref().expect("etag");
    let through = printed_conversation(&run(
        &t,
        &alice,
        &["clear", &i, "--through", "20", "--etag", etag, "--json"],
    ));
    assert_eq!(through.message_count, Some(5));
    assert_eq!(listed_orders(&t, &alice, &i), [21, 22, 23, 24, 25]);
    failed(
        &run(&t, &alice, &["clear", &i, "--etag", etag]),
        &["409 ABORTED"],
    );
    failed(
        &run(&t, &alice, &["clear", &i, "--through", "0"]),
        &["422 INVALID_ARGUMENT", "throughOrder"],
    );
    let both = run(
        &t,
        &alice,
        &["clear", &i, "--through", "3", "--keep-last", "2"],
    );
    assert_eq!(both.status.code(), Some(2), "a usage error");

    let all = printed_conversation(&run(&t, &alice, &["clear", &i, "--json"]));
    assert_eq!(all.message_count, Some(0));
    assert_eq!(listed_orders(&t, &alice, &i), Vec::<u64>::new());
    delete(&client, &[&i]).await;
}

#[tokio::test]
async fn purge_then_create_again_under_the_same_id_shows_no_old_message() {
    let t = target();
    let (alice, _) = t.two_callers();
    let client = alice.client(&t.base);
    let i = seeded(&client, &transcript(5)).await;
    let stale = client.get_conversation(&i, View::Basic).await.expect("get");
    client
        .append_message(
            &i,
            &MessageInput::new(MessageType::User, "moves the etag"),
            None,
        )
        .await
        .expect("append");

    failed(
        &run(
            &t,
            &alice,
            &["purge", &i, "--etag", stale.etag.as_deref().expect("etag")],
        ),
        &["409 ABORTED"],
    );
    let purged = run(&t, &alice, &["purge", &i]);
    assert!(
        purged.status.success(),
        "{}",
        String::from_utf8_lossy(&purged.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&purged.stdout).trim(),
        format!("conversations/{i} purged")
    );
    failed(&run(&t, &alice, &["get", &i]), &["404 NOT_FOUND"]);
    failed(&run(&t, &alice, &["purge", &i]), &["404 NOT_FOUND"]);
    let answer: serde_json::Value = printed(&run(
        &t,
        &alice,
        &["purge", &i, "--allow-missing", "--json"],
    ));
    assert_eq!(answer, json!({}));

    let created = printed_conversation(&run(
        &t,
        &alice,
        &["create", "--id", &i, "--agent", "bot", "--json"],
    ));
    assert_eq!(created.message_count, Some(0));
    assert!(created.labels.unwrap_or_default().is_empty(), "nothing old");
    assert_eq!(listed_orders(&t, &alice, &i), Vec::<u64>::new());
    failed(
        &run(&t, &alice, &["get-message", &i, "1"]),
        &["404 NOT_FOUND"],
    );
    let full = printed_conversation(&run(&t, &alice, &["get", &i, "--full", "--json"]));
    assert_eq!(full.messages.unwrap_or_default(), []);
    let first = printed_message(&run(
        &t,
        &alice,
        &["append", &i, "--content", "new", "--json"],
    ));
    assert_eq!(first.order, Some(1), "a new conversation's orders");
    delete(&client, &[&i]).await;
}

#[tokio::test]
async fn a_transcript_imported_again_into_its_purged_id_holds_each_message_once() {
    let t = target();
    let (alice, _) = t.two_callers();
    let client = alice.client(&t.base);
    let original = seeded(&client, &transcript(60)).await;
    let file = export(&t, &alice, &original);
    let copy = id();
    let import = || {
        printed_conversation(
            &cli(&t, &alice)
                .args(["import", "--chunk", "25", "--id", &copy, "--json"])
                .arg(&file)
                .output()
                .expect("run import"),
        )
    };
    let first = import();
    assert_eq!(first.message_count, Some(60));
    let purged = run(&t, &alice, &["purge", &copy]);
    assert!(
        purged.status.success(),
        "{}",
        String::from_utf8_lossy(&purged.stderr)
    );
    assert!(
        client
            .get_conversation(&copy, View::Basic)
            .await
            .expect_err("purged")
            .is_not_found()
    );

    // The same file into the same id: the same create key and batch keys as the first import,
    // which the purged conversation's keys no longer answer.
    let again = import();
    assert_ne!(again.create_time, first.create_time, "a new conversation");
    assert_eq!(again.message_count, Some(60));
    exactly_once(&client, &copy, &original, 60, "imported into the purged id").await;
    delete(&client, &[&original, &copy]).await;
}

/// A fresh folder under the system's temporary directory.
fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("conversations-cli-{}", id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    dir
}

#[tokio::test]
async fn output_cut_short_by_its_reader_ends_quietly_not_in_a_panic() {
    let t = target();
    let (alice, _) = t.two_callers();
    let client = alice.client(&t.base);
    // More than a pipe holds (64 KiB): the reader goes away while the output is still coming.
    let long: Vec<MessageInput> = (0..200)
        .map(|k| MessageInput::new(MessageType::User, format!("{k}: {}", "x".repeat(1000))))
        .collect();
    let i = seeded(&client, &long).await;
    let mut child = cli(&t, &alice)
        .args(["--json", "messages", &i])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command line starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("its output"))
        .read_line(&mut first)
        .expect("one line");
    assert!(first.contains("\"order\":1"), "{first}");
    // The reader is gone (as `| head -1` leaves it).
    let out = child.wait_with_output().expect("it ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
}
