"""get-conversation and create-conversation as a Python team would write them: boto3 with a client
built once at import, awslambdaric's runtime loop, plain dicts. The same table, keys and item shape
as the Rust functions (so both read the same seeded conversations), the same behaviour for these
two requests: a read of one item or a conditional write of one item, and a JSON answer. Validation,
field masks, preconditions and every other rule of the contract are left out: this is the floor of
what such a function costs in Python, not a second implementation."""

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
    out = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": f"CONV#{owner}#{cid}"}, "sk": {"S": "C"}})
    item = out.get("Item")
    if item is None:
        return _problem(404, "NOT_FOUND", f"conversations/{cid} was not found")
    body, etag = _render(item)
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
    key = f"{now:018}#{cid}"
    conversation = {
        "pk": f"CONV#{owner}#{cid}", "sk": "C", "gsi1pk": owner, "gsi1sk": key,
        "gsi2pk": owner, "gsi2sk": key, "id": cid, "owner": owner,
        "display_name": body.get("displayName"), "agents": agents,
        "labels": body.get("labels") or {}, "lifecycle_state": "IN_PROGRESS",
        "create_time": now, "updated_at": now, "last_used_time": now, "message_count": 0,
    }
    item = {k: serialize(v) for k, v in conversation.items() if v is not None}
    try:
        dynamodb.put_item(TableName=TABLE, Item=item, ConditionExpression="attribute_not_exists(pk)")
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return _problem(409, "ALREADY_EXISTS", f"conversations/{cid} already exists")
    rendered, etag = _render(item)
    return _reply(201, rendered, etag)
