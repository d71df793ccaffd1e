// get-conversation and create-conversation as a Node.js team would write them: the AWS SDK v3
// DynamoDB client built once at load, plain objects, util-dynamodb's marshalling. The same table,
// keys and item shape as the Rust functions, the same behaviour for these two requests (a read of
// one item or a conditional write of one item, and a JSON answer); the contract's other rules are
// left out: the floor of what such a function costs in Node.js, not a second implementation.
"use strict";

const { randomUUID } = require("node:crypto");
const {
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ConditionalCheckFailedException,
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
    new GetItemCommand({
      TableName: TABLE,
      Key: { pk: { S: `CONV#${owner(event)}#${id}` }, sk: { S: "C" } },
    }),
  );
  if (!out.Item) return problem(404, "NOT_FOUND", `conversations/${id} was not found`);
  const [body, etag] = render(out.Item);
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
  const key = `${String(now).padStart(18, "0")}#${id}`;
  const item = marshall(
    {
      pk: `CONV#${who}#${id}`, sk: "C", gsi1pk: who, gsi1sk: key, gsi2pk: who, gsi2sk: key,
      id, owner: who, display_name: body.displayName, agents: body.agents,
      labels: body.labels || {}, lifecycle_state: "IN_PROGRESS",
      create_time: now, updated_at: now, last_used_time: now, message_count: 0,
    },
    { removeUndefinedValues: true },
  );
  try {
    await dynamodb.send(
      new PutItemCommand({ TableName: TABLE, Item: item, ConditionExpression: "attribute_not_exists(pk)" }),
    );
  } catch (e) {
    if (e instanceof ConditionalCheckFailedException) {
      return problem(409, "ALREADY_EXISTS", `conversations/${id} already exists`);
    }
    throw e;
  }
  const [rendered, etag] = render(item);
  return reply(201, rendered, etag);
};
