#!/usr/bin/env python3
"""Writes the event fixtures under events/ (run from anywhere: python3 events/generate.py).

HTTP events are API Gateway HTTP API (payload 2.0) requests as a JWT authorizer delivers them to a
Lambda function on the `$default` stage: `routeKey` is the route, `pathParameters` are filled,
`requestContext.authorizer.jwt.claims` holds the token's claims, every value a string (API Gateway
turns an array claim such as `cognito:groups` into "[admin service]"). Public routes have no
authorizer. The archiver gets an EventBridge schedule event and DynamoDB stream batches.

Ids in paths and bodies are placeholders; tests and `cargo lambda invoke` users patch them.

Every HttpApi route of template.yaml gets an event: the one written in HTTP below, or a default
(an admin's call, placeholder path parameters, `{}` as a write's body). A new route needs no edit
here, only a rerun.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ID = "01936f4e-7a00-7000-8000-000000000001"
ISS = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example"

CLAIMS = {
    "user": {"sub": "alice"},
    "admin": {"sub": "admin-1", "cognito:groups": "[admin]"},
    "service": {"sub": "ai-backend", "cognito:groups": "[service]"},
}
for who, c in CLAIMS.items():
    c.update({
        "iss": ISS,
        "client_id": "3n4b5urk1ft4fl3mg5e62d9ado",
        "token_use": "access",
        "scope": "openid",
        "auth_time": "1764086400",
        "iat": "1764086400",
        "exp": "1764090000",
        "username": c["sub"],
    })

N8N = {
    "nodes": [
        {"name": "Webhook", "type": "n8n-nodes-base.webhookTrigger", "parameters": {"path": "lead"}},
        {"name": "Slack", "type": "n8n-nodes-base.slack", "parameters": {"channel": "#sales"}},
    ],
    "connections": {"Webhook": {"main": [[{"node": "Slack", "type": "main", "index": 0}]]}},
}
INTERACTION = {
    "user_id": "alice",
    "platform": "n8n",
    "kind": "workflow_generation",
    "user_message": "Post new webhook leads to #sales on Slack",
    "ai_response": "Here is a workflow with a webhook trigger and a Slack node.",
    "intent": "create_workflow",
    "workflow": N8N,
    "success": True,
    "processing_time_ms": 850,
    "model_version": "demo-1",
}


def http_event(method, route, who, path=None, query="", body=None, path_params=None):
    path = path or route
    headers = {
        "accept": "application/json",
        "content-length": str(len(json.dumps(body))) if body is not None else "0",
        "host": "abc123.execute-api.us-east-1.amazonaws.com",
        "user-agent": "curl/8.5.0",
        "x-amzn-trace-id": "Root=1-6744e1a0-5c7a4e5f3b2c1d0e9f8a7b6c",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if body is not None:
        headers["content-type"] = "application/json"
    if who is not None:
        headers["authorization"] = "Bearer <the JWT API Gateway verified>"
    ctx = {
        "accountId": "123456789012",
        "apiId": "abc123",
        "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "abc123",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"},
        "requestId": "CzX1aiqZoAMEJdQ=",
        "routeKey": f"{method} {route}",
        "stage": "$default",
        "time": "25/Nov/2026:16:00:00 +0000",
        "timeEpoch": 1795622400000,
    }
    if who is not None:
        ctx["authorizer"] = {"jwt": {"claims": dict(CLAIMS[who]), "scopes": None}}
    ev = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": ctx,
        "isBase64Encoded": False,
    }
    if query:
        qs = {}
        for kv in query.split("&"):
            k, _, v = kv.partition("=")
            qs[k] = v
        ev["queryStringParameters"] = qs
    if path_params:
        ev["pathParameters"] = path_params
    if body is not None:
        ev["body"] = json.dumps(body)
    return ev


HTTP = {
    "log": {
        "post-interactions": http_event("POST", "/api/interactions", "service", body=INTERACTION),
        "post-interactions-batch": http_event("POST", "/api/interactions/batch", "service", body={"interactions": [
            INTERACTION,
            {**INTERACTION, "user_message": "Same, but for Teams", "success": False, "error_message": "unknown node type"},
        ]}),
        "get-interactions": http_event("GET", "/api/interactions", "user", query="platform=n8n&limit=20"),
        "get-interaction": http_event("GET", "/api/interactions/{id}", "user", path=f"/api/interactions/{ID}", path_params={"id": ID}),
    },
    "submit": {
        "post-feedback-submit": http_event("POST", "/api/feedback/submit", "user", body={
            "interaction_id": ID, "feedback_type": "thumbs_up", "sentiment_score": 5, "comment": "worked first time"}),
    },
    "validate-log": {
        "post-workflow-validate": http_event("POST", "/api/workflow/validate", "user", body={
            "platform": "n8n", "workflow": N8N, "interaction_id": ID}),
    },
    "stats": {
        "get-feedback-stats": http_event("GET", "/api/feedback/stats", "user"),
        "get-health": http_event("GET", "/api/health", None),
        "get-openapi": http_event("GET", "/openapi.json", None),
    },
    "export": {
        "get-feedback-export": http_event("GET", "/api/feedback/export/{platform}", "admin", path="/api/feedback/export/n8n",
                                          query="format=openai", path_params={"platform": "n8n"}),
        "get-exports": http_event("GET", "/api/exports", "admin", query="limit=20"),
        "get-export": http_event("GET", "/api/exports/{export_id}", "admin", path=f"/api/exports/{ID}",
                                 path_params={"export_id": ID}),
    },
    "readiness": {
        "get-feedback-readiness": http_event("GET", "/api/feedback/readiness/{platform}", "user",
                                             path="/api/feedback/readiness/n8n", path_params={"platform": "n8n"}),
        # The admin dashboard's static files: public, no authorizer.
        "get-admin": http_event("GET", "/admin", None),
        "get-admin-script": http_event("GET", "/admin/dashboard.js", None),
        "get-admin-style": http_event("GET", "/admin/dashboard.css", None),
    },
    "delete": {
        "delete-feedback-data-one": http_event("DELETE", "/api/feedback/data/{interaction_id}", "user",
                                               path=f"/api/feedback/data/{ID}", path_params={"interaction_id": ID}),
        "delete-feedback-data-user": http_event("DELETE", "/api/feedback/data", "admin", query="user_id=alice"),
        "delete-me-data": http_event("DELETE", "/api/me/data", "user"),
        "get-me-data": http_event("GET", "/api/me/data", "user"),
    },
    "curation": {
        "post-examples": http_event("POST", "/api/examples", "admin", body={
            "platform": "n8n", "user_message": "Post webhook leads to Slack", "workflow": N8N,
            "description": "canonical webhook-to-Slack", "tags": ["slack", "webhook"]}),
        "get-examples": http_event("GET", "/api/examples", "admin", query="platform=n8n"),
        "delete-example": http_event("DELETE", "/api/examples/{id}", "admin", path=f"/api/examples/{ID}", path_params={"id": ID}),
        "post-training-metrics": http_event("POST", "/api/training-metrics", "admin", body={
            "platform": "n8n", "model": "demo-ft-1", "dataset_size": 1200, "run_id": "run-42",
            "metrics": {"loss": 0.41, "accuracy": 0.87}}),
        "get-training-metrics": http_event("GET", "/api/training-metrics", "admin", query="platform=n8n"),
        "post-platforms": http_event("POST", "/api/platforms", "admin", body={"platform": "airflow"}),
        "get-platforms": http_event("GET", "/api/platforms", "user"),
    },
    "archive-run": {
        "post-feedback-archive": http_event("POST", "/api/feedback/archive", "admin", body={"dry_run": True}),
    },
}


def template_routes():
    """Every HttpApi event of template.yaml, in order: (function, METHOD, path, public). The
    template is read line by line (stdlib only): a function is named by its `CodeUri:
    functions/<name>`, an event's properties sit deeper than its name (indent >= 10)."""
    routes, function, event = [], None, None
    with open(os.path.join(HERE, "..", "template.yaml")) as f:
        for line in f:
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            if len(line) - len(line.lstrip(" ")) < 10:
                event = None
            if text.startswith("CodeUri: functions/"):
                function = text.split("/", 1)[1]
            elif text == "Type: HttpApi":
                event = {"function": function, "public": False}
                routes.append(event)
            elif event is not None and text.startswith("Method: "):
                event["method"] = text.split()[1].upper()
            elif event is not None and text.startswith("Path: "):
                event["path"] = text.split()[1]
            elif event is not None and text == "Authorizer: NONE":
                event["public"] = True
    return [(r["function"], r["method"], r["path"], r["public"]) for r in routes]


def default_event(method, route, public):
    """A route's event when HTTP above gives none: an admin's call (any role check passes), the
    path's parameters filled with placeholders, `{}` as the body of a write."""
    params = {}
    path = route
    for segment in route.split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            name = segment[1:-1]
            params[name] = "n8n" if name == "platform" else ID
            path = path.replace(segment, params[name])
    slug = "-".join(p.strip("{}") for p in route.split("/") if p and p != "api") or "root"
    body = {} if method in ("POST", "PUT", "PATCH") else None
    ev = http_event(method, route, None if public else "admin", path=path, body=body, path_params=params or None)
    return f"{method.lower()}-{slug.replace('.', '-').replace('_', '-')}", ev


def http_events():
    """(function, name, event) for every route of template.yaml: the event written above for it,
    or a default one (so a new route needs no edit here; give it one above when `{}` is not a
    useful body). An event above with no route in the template is an error."""
    given = {}
    for fn, events in HTTP.items():
        for name, ev in events.items():
            given[ev["routeKey"]] = (fn, name, ev)
    out = []
    for fn, method, route, public in template_routes():
        key = f"{method} {route}"
        if key in given:
            gfn, name, ev = given.pop(key)
            if gfn != fn:
                raise SystemExit(f"events/generate.py: {key} is under {gfn} here but under {fn} in template.yaml")
            out.append((fn, name, ev))
        else:
            out.append((fn, *default_event(method, route, public)))
    if given:
        raise SystemExit(f"events/generate.py: no route in template.yaml for {sorted(given)}")
    return out


SCHEDULE = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-11-25T03:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/collector-ArchiverSchedule-1A2B3C4D5E6F"],
    "detail": {},
}

STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/collector-HotTable-1A2B3C/stream/2026-11-01T00:00:00.000"
# An interaction's item exactly as the DynamoDB adapter writes it (written by the test
# shared/collector/tests/stream_fixtures.rs with UPDATE_FIXTURES=1, which also checks it).
with open(os.path.join(HERE, "archiver", "item-interaction.json")) as f:
    ITEM = json.load(f)
KEYS = {"pk": ITEM["pk"], "sk": ITEM["sk"]}
# A tombstone (the delete of an archived record) as the adapter writes it (same test).
with open(os.path.join(HERE, "archiver", "item-tombstone.json")) as f:
    TOMB = json.load(f)


def stream_record(name, seq, new=None, old=None, identity=None):
    img = new if new is not None else old
    change = {
        "ApproximateCreationDateTime": 1795622400,
        "Keys": {"pk": img["pk"], "sk": img["sk"]},
        "SequenceNumber": seq,
        "SizeBytes": 412,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        change["NewImage"] = new
    if old is not None:
        change["OldImage"] = old
    rec = {
        "eventID": f"c4ca4238a0b923820dcc509a6f75849{seq[-1]}",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": change,
        "eventSourceARN": STREAM_ARN,
    }
    if identity is not None:
        rec["userIdentity"] = identity
    return rec


ARCHIVER = {
    "schedule": SCHEDULE,
    "stream-insert": {"Records": [stream_record("INSERT", "111100000000000000000001", new=ITEM)]},
    # A delete of an archived record: its tombstone starts an erasure.
    "stream-insert-tombstone": {"Records": [stream_record("INSERT", "111100000000000000000004", new=TOMB)]},
    # A delete by a request (a user's or an admin's): no userIdentity.
    "stream-remove-user": {"Records": [stream_record("REMOVE", "111100000000000000000002", old=ITEM)]},
    # An expiry by the table's TTL: DynamoDB itself is the principal.
    "stream-remove-ttl": {"Records": [stream_record("REMOVE", "111100000000000000000003", old=ITEM,
                                                    identity={"type": "Service", "principalId": "dynamodb.amazonaws.com"})]},
}


def write(rel, obj):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


for fn, name, ev in http_events():
    write(f"http/{fn}/{name}.json", ev)
for who, c in CLAIMS.items():
    write(f"claims/{who}.json", c)
for name, ev in ARCHIVER.items():
    write(f"archiver/{name}.json", ev)
