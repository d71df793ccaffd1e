// get-conversation and create-conversation as a Node.js team would write them: the AWS SDK v3
// DynamoDB client built once at load, plain objects, util-dynamodb's marshalling. The same table,
// keys and item shape as the Rust functions (layout 4: a conversation is a head, sort key C, and a
// body with the large fields, sort key B) and the same DynamoDB requests for these two: get is one
// consistent Query of the pair, create one TransactWriteItems of the head's conditional put and the
// body's put; and a JSON answer. The contract's other rules (and the torn-read check) are left
// out: the floor of what such a function costs in Node.js, not a second implementation.
"use strict";

const { randomUUID } = require("node:crypto");
const {
  DynamoDBClient,
  QueryCommand,
  TransactWriteItemsCommand,
  TransactionCanceledException,
} = require("@aws-sdk/client-dynamodb");
const { marshall, unmarshall } = require("@aws-sdk/util-dynamodb");

const TABLE = process.env.CONVERSATIONS_TABLE;
const dynamodb = new DynamoDBClient({});

const iso = (micros) => {
  const text = new Date(Math.floor(Number(micros) / 1000)).toISOString();
  return `${text.slice(0, 19)}.${String(Number(micros) % 1000000).padStart(6, "0")}Z`;
};

const reply = (statusCode, body, etag) => ({
  statusCode,
  headers: { "content-type": "application/json", ...(etag ? { etag } : {}) },
  body: JSON.stringify(body),
});

const problem = (status, code, detail) => ({
  statusCode: status,
  headers: { "content-type": "application/problem+json" },
  body: JSON.stringify({ type: "about:blank", status, code, detail }),
});

const owner = (event) => event.requestContext.authorizer.jwt.claims.sub;

const render = (item) => {
  const c = unmarshall(item, { wrapNumbers: false });
  const etag = `"${Number(c.updated_at).toString(16)}"`;
  return [
    {
      name: `conversations/${c.id}`,
      displayName: c.display_name,
      agents: c.agents || [],
      labels: c.labels || {},
      lifecycleState: c.lifecycle_state,
      createTime: iso(c.create_time),
      lastUsedTime: iso(c.last_used_time),
      messageCount: Number(c.message_count || 0),
      owner: c.owner,
      etag,
    },
    etag,
  ];
};

exports.get = async (event) => {
  const id = event.pathParameters.id;
  const out = await dynamodb.send(
    new QueryCommand({
      TableName: TABLE,
      KeyConditionExpression: "pk = :pk AND sk BETWEEN :body AND :head",
      ExpressionAttributeValues: {
        ":pk": { S: `CONV#${owner(event)}#${id}` },
        ":body": { S: "B" },
        ":head": { S: "C" },
      },
      ConsistentRead: true,
    }),
  );
  const pair = Object.fromEntries((out.Items || []).map((item) => [item.sk.S, item]));
  if (!pair.C) return problem(404, "NOT_FOUND", `conversations/${id} was not found`);
  const [body, etag] = render({ ...pair.B, ...pair.C });
  return reply(200, body, etag);
};

exports.create = async (event) => {
  let body;
  try {
    body = JSON.parse(event.body || "{}");
  } catch {
    return problem(400, "INVALID_ARGUMENT", "the body is not JSON");
  }
  if (!Array.isArray(body.agents) || body.agents.length === 0) {
    return problem(422, "INVALID_ARGUMENT", "agents is required");
  }
  const who = owner(event);
  const id = randomUUID();
  const now = Date.now() * 1000;
  const pk = `CONV#${who}#${id}`;
  const key = `${String(now).padStart(18, "0")}#${id}`;
  const head = marshall(
    {
      pk, sk: "C", gsi1pk: who, gsi1sk: key, gsi2pk: who, gsi2sk: key,
      id, owner: who, display_name: body.displayName, lifecycle_state: "IN_PROGRESS",
      create_time: now, updated_at: now, last_used_time: now, message_count: 0,
      body_version: now,
    },
    { removeUndefinedValues: true },
  );
  const large = marshall({
    pk, sk: "B", gsi1pk: who, gsi1sk: `${key}#`, create_time: now,
    agents: body.agents, labels: body.labels || {}, body_version: now,
  });
  try {
    // The SDK fills in the transaction's ClientRequestToken, as the store sends one.
    await dynamodb.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          { Put: { TableName: TABLE, Item: head, ConditionExpression: "attribute_not_exists(pk)" } },
          { Put: { TableName: TABLE, Item: large } },
        ],
      }),
    );
  } catch (e) {
    if (e instanceof TransactionCanceledException) {
      return problem(409, "ALREADY_EXISTS", `conversations/${id} already exists`);
    }
    throw e;
  }
  const [rendered, etag] = render({ ...large, ...head });
  return reply(201, rendered, etag);
};
