// The Lambda Runtime API loop, as the managed Node.js runtime runs it: take the next event, call
// the handler, post its answer (or its error). Used because aws-lambda-ric's install compiles curl
// and aws-lambda-cpp (cmake, autotools; its 4.x needs Node 22), which this machine does not have.
// Usage: node runtime.cjs <export of handler.cjs>
"use strict";

const handler = require("./handler.cjs")[process.argv[2]];
const api = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime`;

(async () => {
  if (typeof handler !== "function") {
    await fetch(`${api}/init/error`, {
      method: "POST",
      body: JSON.stringify({ errorMessage: `no handler ${process.argv[2]}`, errorType: "Runtime.HandlerNotFound" }),
    });
    process.exit(1);
  }
  for (;;) {
    const next = await fetch(`${api}/invocation/next`);
    const id = next.headers.get("lambda-runtime-aws-request-id");
    const event = await next.json();
    try {
      const result = await handler(event, { awsRequestId: id });
      await fetch(`${api}/invocation/${id}/response`, { method: "POST", body: JSON.stringify(result) });
    } catch (e) {
      await fetch(`${api}/invocation/${id}/error`, {
        method: "POST",
        body: JSON.stringify({ errorMessage: String(e && e.message), errorType: (e && e.name) || "Error" }),
      });
    }
  }
})();
