"""Schemathesis hooks for runs against the local emulator (scripts/schemathesis.sh loads this file
only when API_BASE_URL is a loopback address).

cargo lambda watch (1.9.2, the newest release) turns a request body whose Content-Type is
application/json or text/* into a JSON string before any function runs, and answers its own
`500 text/plain` when those bytes are not UTF-8: no function of ours sees the request. The fuzzing
phase sends such bodies ("syntax fuzzing": random bytes that are not JSON). This hook keeps the
random bodies that are UTF-8 text (still not JSON: each must be a 400 problem) and drops only the
ones the emulator itself cannot carry. What the service does with them is proven in-process, where
the handler gets the raw bytes: tests/tests/handlers.rs `a_body_that_is_not_utf_8_is_400`.
"""

import schemathesis


@schemathesis.hook
def filter_body(context, body):
    if isinstance(body, (bytes, bytearray)):
        try:
            bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True
