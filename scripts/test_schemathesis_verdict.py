"""Tests of scripts/schemathesis_verdict.py on made-up reports and function logs. Those that
replay a request need the running stack at API_BASE_URL (make test runs them right after
Schemathesis, on the same stack); the function log's and the rules' tests need none.

    API_BASE_URL=http://127.0.0.1:9000 .venv/bin/python -m unittest scripts/test_schemathesis_verdict.py
"""

import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
OPENAPI = os.path.join(HERE, "..", "openapi.yaml")
VERDICT = os.path.join(HERE, "schemathesis_verdict.py")
BASE = os.environ.get("API_BASE_URL", "")

LOST = {
    "status_code": 500,
    "headers": {"content-type": ["text/plain"]},
    "content": {"$base64": ""},
    "elapsed": 0.01,
}


def scenario(n, response, failed=True, check="not_a_server_error"):
    """A ScenarioFinished event with one case: list the caller's conversations."""
    case_id = f"case-{n}"
    value = {
        "method": "GET",
        "path": "/v1/conversations",
        "id": case_id,
        "headers": {"X-Owner-Id": "verdict-test"},
        "query": {"pageSize": "1"},
        "meta": {"generation": {"mode": "positive"}, "phase": {"name": "fuzzing"}},
    }
    request = {
        "method": "GET",
        "uri": f"{BASE}/v1/conversations?pageSize=1",
        "headers": {"X-Owner-Id": ["verdict-test"]},
    }
    status = "failure" if failed else "success"
    return {
        "ScenarioFinished": {
            "recorder": {
                "cases": {case_id: {"value": value}},
                "interactions": {case_id: {"request": request, "response": response}},
                "checks": {case_id: [{"name": check, "status": status}]},
            }
        }
    }


def served(request_id, status=200):
    """A response of the service: every one carries x-request-id."""
    return {"status_code": status, "headers": {"x-request-id": [request_id]}, "content": {"$base64": ""}}


SERVED = served("r")


def request_line(request_id, status=200, method="GET", path="/v1/conversations"):
    """The JSON line a function logs for one request (shared/src/http.rs, `serve`)."""
    line = {
        "level": "ERROR" if status >= 500 else "INFO",
        "message": "request failed" if status >= 500 else "request",
        "method": method,
        "route": path,
        "path": path,
        "status": status,
        "latency_ms": 1.5,
        "dynamodb_requests": 1,
        "request_id": request_id,
    }
    if status >= 500:
        line.update(error="internal error", cause="the handler panicked")
    return json.dumps(line)


# What else the cargo lambda watch log holds: its own lines, cargo's, a function's start-up.
NOISE = [
    " INFO spawning function instance function=\"list-conversations\" instance_id=1",
    "     Running `target/debug/list-conversations`",
    '{"level":"WARN","message":"AWS_LAMBDA_MAX_CONCURRENCY is set to \'1\', but the concurrency-tokio feature is not enabled; running sequentially"}',
]


def logged(events):
    """The function log that goes with a report: a request line for every response of the
    service, and a 200 for every response the emulator lost (the function had answered)."""
    lines = list(NOISE)
    for n, event in enumerate(events):
        recorder = (event.get("ScenarioFinished") or {}).get("recorder") or {}
        for interaction in (recorder.get("interactions") or {}).values():
            response = interaction.get("response")
            if not response:
                continue
            ids = response.get("headers", {}).get("x-request-id")
            lines.append(request_line(ids[0] if ids else f"answered-{n}", response["status_code"] if ids else 200))
    return lines


def verdict(events, status="0", log_lines=None, base=None):
    with tempfile.TemporaryDirectory() as work:
        report = os.path.join(work, "report.ndjson")
        with open(report, "w") as f:
            for event in events:
                f.write(json.dumps(event) + "\n")
        log = os.path.join(work, "functions.log")
        with open(log, "w") as f:
            f.writelines(line + "\n" for line in (logged(events) if log_lines is None else log_lines))
        run = subprocess.run(
            [sys.executable, VERDICT, report, OPENAPI, base or BASE, status, log],
            capture_output=True,
            text=True,
        )
        return run.returncode, run.stdout + run.stderr


class LostAgain(http.server.BaseHTTPRequestHandler):
    """What the emulator answers when it loses a response: 500 text/plain, no x-request-id."""

    def do_GET(self):
        self.send_response(500)
        self.send_header("content-type", "text/plain")
        self.end_headers()
        self.wfile.write(b"lost")

    def log_message(self, *_):
        pass


@unittest.skipUnless(BASE, "API_BASE_URL names the running stack")
class Verdict(unittest.TestCase):
    def test_a_clean_report_passes(self):
        code, out = verdict([scenario(1, SERVED, failed=False)])
        self.assertEqual(code, 0, out)

    def test_an_error_fails_the_run(self):
        code, out = verdict([{"NonFatalError": {"info": "timed out"}}])
        self.assertEqual(code, 1, out)
        self.assertIn("schemathesis error", out)

    def test_a_request_without_a_response_fails_the_run(self):
        code, out = verdict([scenario(1, None, failed=False)])
        self.assertEqual(code, 1, out)
        self.assertIn("no response", out)

    def test_a_service_failure_fails_the_run(self):
        code, out = verdict([scenario(1, SERVED)])
        self.assertEqual(code, 1, out)
        self.assertIn("service failure", out)

    def test_a_nonzero_exit_without_failures_in_the_report_fails(self):
        code, out = verdict([scenario(1, SERVED, failed=False)], status="1")
        self.assertEqual(code, 1, out)

    def test_a_lost_response_whose_replay_passes_is_excused(self):
        code, out = verdict([scenario(1, LOST)], status="1")
        self.assertEqual(code, 0, out)
        self.assertIn("replayed and passed every check", out)
        self.assertTrue(out.strip().endswith("1 response(s) lost by the emulator"), out)

    def test_more_lost_responses_than_the_cap_fail(self):
        code, out = verdict([scenario(n, LOST) for n in range(4)], status="1")
        self.assertEqual(code, 1, out)
        self.assertIn("more than the 3", out)

    def test_a_lost_response_fails_when_a_function_answered_5xx(self):
        code, out = verdict([scenario(1, LOST)], status="1", log_lines=[request_line("hidden", 500)])
        self.assertEqual(code, 1, out)
        self.assertIn("a function answered 500 that Schemathesis did not report", out)
        self.assertNotIn("replayed", out)

    def test_a_lost_response_is_not_excused_without_a_function_log(self):
        code, out = verdict([scenario(1, LOST)], status="1", log_lines=[])
        self.assertEqual(code, 1, out)
        self.assertIn("no request lines", out)
        self.assertNotIn("replayed", out)

    def test_a_lost_response_whose_replay_fails_is_not_excused(self):
        server = http.server.HTTPServer(("127.0.0.1", 0), LostAgain)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            stub = f"http://127.0.0.1:{server.server_port}"
            code, out = verdict([scenario(1, LOST)], status="1", base=stub)
        finally:
            server.shutdown()
        self.assertEqual(code, 1, out)
        self.assertIn("its replay failed", out)


class FunctionLog(unittest.TestCase):
    """The functions' log judged against the report (no stack needed: nothing is replayed)."""

    def test_a_log_that_matches_a_clean_report_passes(self):
        events = [scenario(1, served("a"), failed=False), scenario(2, served("b", 404), failed=False)]
        code, out = verdict(events, base="http://127.0.0.1:9")
        self.assertEqual(code, 0, out)
        self.assertIn("function log: 2 request lines, 0 answered 5xx; Schemathesis reported 0 server error(s)", out)

    def test_a_log_without_request_lines_fails(self):
        events = [scenario(1, served("a"), failed=False)]
        # What the old guard grepped: text lines (CONVERSATIONS_LOG_FORMAT=text), here even a 5xx.
        text = ["INFO request method=GET route=/v1/conversations status=200 request_id=a"]
        for lines in ([], NOISE, text):
            code, out = verdict(events, log_lines=lines, base="http://127.0.0.1:9")
            self.assertEqual(code, 1, out)
            self.assertIn("the function log has no request lines", out)

    def test_a_5xx_that_schemathesis_did_not_report_fails(self):
        events = [scenario(1, served("a"), failed=False)]
        lines = logged(events) + [request_line("unseen", 503, "POST")]
        code, out = verdict(events, log_lines=lines, base="http://127.0.0.1:9")
        self.assertEqual(code, 1, out)
        self.assertIn("a function answered 503 that Schemathesis did not report as a server error: POST", out)
        self.assertIn("1 answered 5xx; Schemathesis reported 0 server error(s)", out)

    def test_a_5xx_that_schemathesis_saw_but_did_not_count_as_a_server_error_fails(self):
        # The response reached Schemathesis, but only another check failed on it (say
        # not_a_server_error was switched off): the log still counts it.
        events = [scenario(1, served("a", 500), check="status_code_conformance")]
        code, out = verdict(events, status="1", base="http://127.0.0.1:9")
        self.assertEqual(code, 1, out)
        self.assertIn("a function answered 500 that Schemathesis did not report as a server error", out)

    def test_a_reported_server_error_agrees_with_the_log(self):
        events = [scenario(1, served("a", 500))]
        code, out = verdict(events, status="1", base="http://127.0.0.1:9")
        self.assertEqual(code, 1, out)  # a service failure all the same
        self.assertIn("service failure", out)
        self.assertNotIn("did not report", out)
        self.assertIn("1 answered 5xx; Schemathesis reported 1 server error(s)", out)

    def test_a_response_missing_from_the_log_fails(self):
        events = [scenario(1, served("a"), failed=False), scenario(2, served("b"), failed=False)]
        for lines in ([request_line("a")], [request_line("a"), request_line("b", 404)]):
            code, out = verdict(events, log_lines=lines, base="http://127.0.0.1:9")
            self.assertEqual(code, 1, out)
            self.assertIn("Schemathesis got 200 (x-request-id b)", out)
            self.assertIn("not this stack's log", out)

    def test_a_panic_fails(self):
        events = [scenario(1, served("a"), failed=False)]
        lines = logged(events) + ["thread 'main' panicked at shared/src/http.rs:1:1:", "boom"]
        code, out = verdict(events, log_lines=lines, base="http://127.0.0.1:9")
        self.assertEqual(code, 1, out)
        self.assertIn("a function crashed: thread 'main' panicked", out)

    def test_an_unreadable_line_fails(self):
        events = [scenario(1, served("a"), failed=False)]
        broken = request_line("x", 500)[:60]
        no_status = json.dumps({"level": "INFO", "message": "request", "method": "GET", "route": "/", "request_id": "y"})
        for line in (broken, no_status):
            code, out = verdict(events, log_lines=logged(events) + [line], base="http://127.0.0.1:9")
            self.assertEqual(code, 1, out)
            self.assertIn("a function log line the guard cannot read", out)


class Rules(unittest.TestCase):
    """The contract rules of scripts/schemathesis_hooks.py name the fields they explain."""

    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, HERE)
        import schemathesis_hooks

        cls.hooks = schemathesis_hooks

    def problem(self, *errors):
        return {
            "code": "INVALID_ARGUMENT",
            "errors": [{"field": f, "code": c, "message": ""} for f, c in errors],
        }

    def rule(self, operation, status=422):
        return next(r for r in self.hooks.RULES[operation] if r.status == status)

    def test_a_batch_error_is_matched_by_its_message_field_without_indexes(self):
        rule = self.rule("batchAppendMessages")
        dup = self.problem(("messages[3].toolCalls[1].id", "duplicate"))
        self.assertTrue(rule.matches(422, dup, "fuzzing"))
        big = self.problem(("messages[0].metadata", "too_large"), ("requestId", "reused"))
        self.assertTrue(rule.matches(422, big, "fuzzing"))

    def test_an_error_the_schema_could_have_prevented_is_not_explained(self):
        rule = self.rule("batchAppendMessages")
        self.assertFalse(rule.matches(422, self.problem(("messages[0].type", "invalid")), "fuzzing"))
        self.assertFalse(rule.matches(422, self.problem(("toolCalls.id", "duplicate")), "fuzzing"))
        mixed = self.problem(("messages[0].content", "too_long"), ("messages[1].type", "required"))
        self.assertFalse(rule.matches(422, mixed, "fuzzing"))

    def test_a_field_inside_a_rule_field_is_explained(self):
        rule = self.rule("updateConversation")
        self.assertTrue(rule.matches(422, self.problem(("labels", "too_many")), "fuzzing"))
        self.assertFalse(rule.matches(422, self.problem(("labelsx", "too_many")), "fuzzing"))

    def test_a_batch_s_conversation_metadata_is_explained_only_past_16_kib(self):
        rule = self.rule("batchAppendMessages")
        self.assertTrue(rule.matches(422, self.problem(("conversationMetadata", "too_large")), "fuzzing"))
        # A key breaking the rule and a 65th key are the schema's to refuse.
        for code in ("invalid_key", "too_many", "invalid_type"):
            self.assertFalse(rule.matches(422, self.problem(("conversationMetadata", code)), "fuzzing"), code)

    def test_a_repeated_key_whose_messages_went_is_explained_by_its_detail_only(self):
        gone = {
            "code": "ALREADY_EXISTS",
            "detail": "a message this idempotency key appended to conversations/c-1 was deleted or "
            "cleared since: its first call cannot be answered again; a new call needs a new key",
        }
        taken = {"code": "ALREADY_EXISTS", "detail": "conversations/c-1 already exists"}
        for operation in ("appendMessage", "batchAppendMessages"):
            rules = [r for r in self.hooks.RULES[operation] if r.status == 409]
            self.assertTrue(any(r.matches(409, gone, "stateful") for r in rules), operation)
            self.assertFalse(any(r.matches(409, taken, "stateful") for r in rules), operation)

    def test_the_erasure_operations_are_refused_only_as_missing_or_by_a_precondition(self):
        for operation in ("deleteMessage", "clearMessages", "purgeConversation"):
            statuses = {(r.status, r.code) for r in self.hooks.RULES[operation] if r.phases is None}
            self.assertEqual(
                statuses, {(404, "NOT_FOUND"), (409, "ABORTED"), (412, "FAILED_PRECONDITION")}, operation
            )

    def test_a_purged_conversation_s_page_token_is_explained_on_list_messages_only(self):
        problem = {
            "code": "INVALID_ARGUMENT",
            "detail": "pageToken was issued for an earlier conversation of conversations/c-1",
        }
        self.assertTrue(self.rule("listMessages", 400).matches(400, problem, "fuzzing"))
        other = {"code": "INVALID_ARGUMENT", "detail": "pageToken is not a token this service issued"}
        self.assertFalse(self.rule("listMessages", 400).matches(400, other, "fuzzing"))


if __name__ == "__main__":
    unittest.main()
