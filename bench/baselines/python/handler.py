"""get-conversation and create-conversation as a Python team would write them: boto3 with a client
built once at import, awslambdaric's runtime loop, plain dicts. The same table, keys and item shape
as the Rust functions (layout 4: a conversation is a head, sort key C, and a body with the large
fields, sort key B; so both read the same seeded conversations) and the same DynamoDB requests for
these two: get is one consistent Query of the pair, create one TransactWriteItems of the head's
conditional put and the body's put; and a JSON answer. Validation, field masks, preconditions, the
torn-read check and every other rule of the contract are left out: this is the floor of what such
a function costs in Python, not a second implementation."""

import datetime
import json
import os
import time
import uuid

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

TABLE = os.environ["CONVERSATIONS_TABLE"]
dynamodb = boto3.client("dynamodb")
deserialize = TypeDeserializer().deserialize
serialize = TypeSerializer().serialize


def _iso(micros):
    at = datetime.datetime.fromtimestamp(micros / 1_000_000, tz=datetime.timezone.utc)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _reply(status, body, etag=None):
    headers = {"content-type": "application/json"}
    if etag:
        headers["etag"] = etag
    return {"statusCode": status, "headers": headers, "body": json.dumps(body)}


def _problem(status, code, detail):
    body = {"type": "about:blank", "status": status, "code": code, "detail": detail}
    return {"statusCode": status, "headers": {"content-type": "application/problem+json"},
            "body": json.dumps(body)}


def _owner(event):
    return event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]


def _render(item):
    c = {k: deserialize(v) for k, v in item.items()}
    etag = f'"{int(c["updated_at"]):x}"'
    return {
        "name": f"conversations/{c['id']}",
        "displayName": c.get("display_name"),
        "agents": list(c.get("agents", [])),
        "labels": dict(c.get("labels", {})),
        "lifecycleState": c.get("lifecycle_state"),
        "createTime": _iso(int(c["create_time"])),
        "lastUsedTime": _iso(int(c["last_used_time"])),
        "messageCount": int(c.get("message_count", 0)),
        "owner": c["owner"],
        "etag": etag,
    }, etag


def get(event, context):
    owner, cid = _owner(event), event["pathParameters"]["id"]
    out = dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND sk BETWEEN :body AND :head",
        ExpressionAttributeValues={
            ":pk": {"S": f"CONV#{owner}#{cid}"}, ":body": {"S": "B"}, ":head": {"S": "C"},
        },
        ConsistentRead=True,
    )
    pair = {item["sk"]["S"]: item for item in out["Items"]}
    if "C" not in pair:
        return _problem(404, "NOT_FOUND", f"conversations/{cid} was not found")
    body, etag = _render({**pair.get("B", {}), **pair["C"]})
    return _reply(200, body, etag)


def create(event, context):
    owner = _owner(event)
    try:
        body = json.loads(event.get("body") or "{}")
    except ValueError:
        return _problem(400, "INVALID_ARGUMENT", "the body is not JSON")
    agents = body.get("agents")
    if not isinstance(agents, list) or not agents:
        return _problem(422, "INVALID_ARGUMENT", "agents is required")
    cid, now = str(uuid.uuid4()), time.time_ns() // 1000
    pk, key = f"CONV#{owner}#{cid}", f"{now:018}#{cid}"
    head = {
        "pk": pk, "sk": "C", "gsi1pk": owner, "gsi1sk": key,
        "gsi2pk": owner, "gsi2sk": key, "id": cid, "owner": owner,
        "display_name": body.get("displayName"), "lifecycle_state": "IN_PROGRESS",
        "create_time": now, "updated_at": now, "last_used_time": now, "message_count": 0,
        "body_version": now,
    }
    large = {
        "pk": pk, "sk": "B", "gsi1pk": owner, "gsi1sk": f"{key}#", "create_time": now,
        "agents": agents, "labels": body.get("labels") or {}, "body_version": now,
    }
    head_item, body_item = (
        {k: serialize(v) for k, v in part.items() if v is not None} for part in (head, large)
    )
    try:
        # boto3 fills in the transaction's ClientRequestToken, as the store sends one.
        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": TABLE, "Item": head_item,
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": TABLE, "Item": body_item}},
        ])
    except dynamodb.exceptions.TransactionCanceledException:
        return _problem(409, "ALREADY_EXISTS", f"conversations/{cid} already exists")
    rendered, etag = _render({**body_item, **head_item})
    return _reply(201, rendered, etag)
