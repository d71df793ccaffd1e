"""Tests of scripts/schemathesis_verdict.py on made-up reports, against the running stack at
API_BASE_URL (make test runs them right after Schemathesis, on the same stack).

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


def scenario(n, response, failed=True):
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
                "checks": {case_id: [{"name": "not_a_server_error", "status": status}]},
            }
        }
    }


SERVED = {"status_code": 200, "headers": {"x-request-id": ["r"]}, "content": {"$base64": ""}}


def verdict(events, status="0", log_lines=(), base=None):
    with tempfile.TemporaryDirectory() as work:
        report = os.path.join(work, "report.ndjson")
        with open(report, "w") as f:
            for event in events:
                f.write(json.dumps(event) + "\n")
        log = os.path.join(work, "functions.log")
        with open(log, "w") as f:
            f.writelines(line + "\n" for line in log_lines)
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
        code, out = verdict([scenario(1, LOST)], status="1", log_lines=["INFO request status=500"])
        self.assertEqual(code, 1, out)

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


if __name__ == "__main__":
    unittest.main()


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
