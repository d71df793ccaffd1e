"""The verdict of one Schemathesis run (scripts/schemathesis.sh): reads that run's NDJSON report
and decides. Every failing check fails the run, and so does every error Schemathesis met (a
timeout, a dropped connection, a request it could not send): those are requests with no verdict.

The functions' own log (FUNCTION_LOG: what they wrote during this run, JSON lines, as make test
starts them with CONVERSATIONS_LOG_FORMAT=json and RUST_LOG=info) is judged against the report,
so that a 5xx cannot pass unseen whatever Schemathesis' checks say. The run fails when
  - the log has no request line at all (a guard that sees nothing proves nothing: text logs, a
    log level above info, the wrong file),
  - a line of it cannot be read, or a function panicked,
  - a response that Schemathesis got from a function (it carries `x-request-id`) has no request
    line with that id and status: then the log is not this stack's, or it lost lines,
  - a function answered 5xx to a request that Schemathesis did not report as a server error
    (`not_a_server_error` failed for that very response); the two counts are printed.

One thing is excused, a few times at most: a response that `cargo lambda watch` itself lost.
cargo lambda watch (1.9.2) now and then answers an invocation with its own
`500 text/plain {"type":"https://httpstatuses.com/500",...}` after the function answered (seen
with responses of tens of kilobytes). Such a response carries no `x-request-id`, which every
response of this service carries. It is excused only if
  - it is one of at most MAX_LOST in the run,
  - the same request, sent again once, passes every check (Schemathesis' own, through its Python
    API, with the configuration's exclusions), and
  - the functions' log passes the checks above (it is required for the excuse).

usage: schemathesis_verdict.py REPORT.ndjson OPENAPI BASE_URL SCHEMATHESIS_STATUS [FUNCTION_LOG]
exit 0: the run passed; 1: it failed. The last line says how many responses were excused.
"""

import base64
import json
import re
import sys

MAX_LOST = 3

# The messages of the one line per request that shared/src/http.rs `serve` logs, and the fields
# the guard reads from it.
REQUEST_MESSAGES = ("request", "request failed")
REQUEST_FIELDS = ("method", "route", "status", "request_id")
# What a Rust process prints when it dies or panics (stderr, not a log line).
CRASH = re.compile(r"panicked at|has overflowed its stack|fatal runtime error")


def emulator_lost(response):
    if not response or response.get("status_code") != 500:
        return False
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    return "x-request-id" not in headers and any(
        "text/plain" in v for v in headers.get("content-type", [])
    )


def header(response, name):
    values = {k.lower(): v for k, v in (response.get("headers") or {}).items()}.get(name)
    return values[0] if values else None


def read(report):
    """The failed cases (with their request and case), the errors, and every response a function
    gave (it carries `x-request-id`: request id, status, the names of the checks that failed, and
    where it was sent), of one report."""
    failures, errors, responses = [], [], []
    with open(report) as f:
        for line in f:
            event = json.loads(line)
            kind = next(iter(event))
            if "Error" in kind or kind == "Interrupted":
                info = event[kind]
                errors.append(f"{kind}: {json.dumps(info)[:300]}")
                continue
            finished = event.get("ScenarioFinished") or event.get("FuzzScenarioFinished")
            if not finished:
                continue
            recorder = finished.get("recorder") or {}
            interactions = recorder.get("interactions") or {}
            cases = recorder.get("cases") or {}
            checks = recorder.get("checks") or {}
            failed = {
                case_id: [c["name"] for c in results if c.get("status") == "failure"]
                for case_id, results in checks.items()
            }
            for case_id, names in failed.items():
                if names:
                    failures.append(
                        (names, interactions.get(case_id) or {}, (cases.get(case_id) or {}).get("value") or {})
                    )
            for case_id, interaction in interactions.items():
                response = (interaction or {}).get("response")
                request_id = header(response or {}, "x-request-id")
                if request_id:
                    request = interaction.get("request") or {}
                    responses.append(
                        {
                            "request_id": request_id,
                            "status": response.get("status_code"),
                            "failed": failed.get(case_id) or [],
                            "where": f"{request.get('method')} {request.get('uri')}",
                        }
                    )
            for case_id, case in cases.items():
                interaction = interactions.get(case_id)
                if interaction is not None and interaction.get("response") is None:
                    request = interaction.get("request") or {}
                    errors.append(
                        f"no response (timeout or dropped connection): {request.get('method')} {request.get('uri')}"
                    )
    return failures, errors, responses


def function_log(path):
    """The request lines of the functions' JSON log, the lines it cannot read, and the crashes."""
    requests, unreadable, crashes = [], [], []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if CRASH.search(line):
                crashes.append(line)
            if not line.startswith("{"):
                continue  # cargo lambda watch's own lines, cargo's, a panic's message
            try:
                event = json.loads(line)
            except ValueError:
                unreadable.append(line)
                continue
            if not isinstance(event, dict) or event.get("message") not in REQUEST_MESSAGES:
                continue
            if any(event.get(field) is None for field in REQUEST_FIELDS) or not isinstance(event["status"], int):
                unreadable.append(line)
                continue
            requests.append(event)
    return requests, unreadable, crashes


def judge_log(path, responses):
    """The problems of the functions' log against the report's responses, and its summary."""
    requests, unreadable, crashes = function_log(path)
    problems = []
    if not requests:
        problems.append(
            "the function log has no request lines: nothing shows what the functions answered "
            "(it must be theirs, JSON lines at level info: CONVERSATIONS_LOG_FORMAT=json RUST_LOG=info)"
        )
    for line in unreadable[:5]:
        problems.append(f"a function log line the guard cannot read: {line[:300]}")
    for line in crashes[:5]:
        problems.append(f"a function crashed: {line[:300]}")
    logged = {}
    for event in requests:
        logged.setdefault(event["request_id"], []).append(event)
    unlogged = [r for r in responses if r["status"] not in [e["status"] for e in logged.get(r["request_id"], [])]]
    for response in unlogged[:5]:
        problems.append(
            f"Schemathesis got {response['status']} (x-request-id {response['request_id']}) for "
            f"{response['where']}, which the function log does not show: it is not this stack's log, or it lost lines"
        )
    if len(unlogged) > 5:
        problems.append(f"... {len(unlogged) - 5} more responses missing from the function log")
    reported = {
        r["request_id"] for r in responses if r["status"] >= 500 and "not_a_server_error" in r["failed"]
    }
    server_errors = [e for e in requests if e["status"] >= 500]
    unreported = [e for e in server_errors if e["request_id"] not in reported]
    for event in unreported[:20]:
        problems.append(
            f"a function answered {event['status']} that Schemathesis did not report as a server error: "
            f"{event['method']} {event.get('path', event['route'])} (request {event['request_id']}"
            + (f": {event['error']}" if event.get("error") else "")
            + ")"
        )
    if len(unreported) > 20:
        problems.append(f"... {len(unreported) - 20} more 5xx that Schemathesis did not report")
    summary = (
        f"function log: {len(requests)} request lines, {len(server_errors)} answered 5xx; "
        f"Schemathesis reported {len(reported)} server error(s) of the {len(responses)} responses it got from the functions"
    )
    return problems, summary


def decoded(value):
    if isinstance(value, dict) and set(value) == {"$base64"}:
        return base64.b64decode(value["$base64"])
    return value


def replay(openapi, base_url, case_value):
    """Sends the case again once and runs every check on the answer; None when it passes."""
    import schemathesis
    from schemathesis.specs.openapi.checks import ignored_auth

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    import schemathesis_hooks  # noqa: F401  (registers the contract's own check)

    schema = schemathesis.openapi.from_path(openapi)
    operation = schema[case_value["path"]][case_value["method"].upper()]
    kwargs = {
        key: decoded(case_value[key])
        for key in ("path_parameters", "query", "headers", "body", "media_type")
        if key in case_value
    }
    case = operation.Case(**kwargs)
    try:
        response = case.call_and_validate(base_url=base_url, excluded_checks=[ignored_auth])
    except (Exception, BaseExceptionGroup) as failure:  # a FailureGroup of checks, or a send error
        return f"{type(failure).__name__}: {str(failure)[:400]}"
    if "x-request-id" not in {k.lower() for k in response.headers}:
        return f"the replay was lost again ({response.status_code})"
    return None


def main():
    report, openapi, base_url, status = sys.argv[1:5]
    log = sys.argv[5] if len(sys.argv) > 5 else None
    failures, errors, responses = read(report)
    service = [(f, i) for f, i, _ in failures if not emulator_lost(i.get("response"))]
    lost = [(f, i, c) for f, i, c in failures if emulator_lost(i.get("response"))]
    verdict = 0
    for error in errors:
        print(f"schemathesis error: {error}")
        verdict = 1
    for failed, interaction in service:
        request = interaction.get("request") or {}
        print(f"service failure: {request.get('method')} {request.get('uri')}: {', '.join(failed)}")
        verdict = 1
    if status != "0" and not failures and not errors:
        print(f"schemathesis exited {status}, but its report shows no failure: see its output above")
        verdict = 1
    if len(lost) > MAX_LOST:
        print(f"{len(lost)} responses lost by the emulator: more than the {MAX_LOST} a run may excuse")
        verdict = 1
    if log:
        problems, summary = judge_log(log, responses)
        for problem in problems:
            print(problem)
            verdict = 1
        print(summary)
    else:
        print("no function log given: the functions' own answers are not checked against the report")
        if lost:
            print("a lost response is excused only when the function log shows what the functions answered")
            verdict = 1
    if lost and verdict == 0:
        for failed, interaction, case in lost:
            request = interaction.get("request") or {}
            where = f"{request.get('method')} {request.get('uri')}"
            problem = replay(openapi, base_url, case) if case else "the report has no case to replay"
            if problem:
                print(f"lost by cargo lambda watch, and its replay failed: {where}: {problem}")
                verdict = 1
            else:
                print(f"lost by cargo lambda watch, replayed and passed every check: {where}")
    excused = len(lost) if verdict == 0 else 0
    print(f"{excused} response(s) lost by the emulator")
    return verdict


if __name__ == "__main__":
    sys.exit(main())
