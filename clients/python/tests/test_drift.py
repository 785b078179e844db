"""The client's models and routes against the live server's /openapi.json: any route, query
parameter, schema, field, requiredness or type that differs fails this test."""

import copy
from typing import Any, Dict

import pytest

from collector_client import Client
from collector_client.drift import differences
from conftest import Server


@pytest.fixture(scope="module")
def openapi(server: Server) -> Dict[str, Any]:
    with Client(server.url) as c:
        return c.openapi()


def test_client_matches_the_servers_openapi(openapi: Dict[str, Any]) -> None:
    diffs = differences(openapi)
    assert diffs == [], "the client drifted from the server:\n" + "\n".join(diffs)


# The checks below prove the comparison is sharp: each change a server could make is caught.


def test_a_new_response_field_is_drift(openapi: Dict[str, Any]) -> None:
    doc = copy.deepcopy(openapi)
    doc["components"]["schemas"]["IngestReceipt"]["properties"]["region"] = {"type": "string"}
    assert differences(doc) == ["IngestReceipt.region: on the server, not in the client"]


def test_a_new_request_field_is_drift(openapi: Dict[str, Any]) -> None:
    doc = copy.deepcopy(openapi)
    doc["components"]["schemas"]["FeedbackInput"]["allOf"][0]["properties"]["rating"] = {"type": "integer"}
    assert differences(doc) == ["FeedbackInput.rating: on the server, not in the client"]


def test_a_removed_field_a_requiredness_and_a_type_are_drift(openapi: Dict[str, Any]) -> None:
    doc = copy.deepcopy(openapi)
    overview = doc["components"]["schemas"]["Overview"]
    del overview["properties"]["feedback_rate"]
    overview["required"].remove("feedback_rate")
    doc["components"]["schemas"]["DeleteAnswer"]["required"].remove("affected_exports")
    doc["components"]["schemas"]["Storage"]["properties"]["hot_bytes"] = {"type": "string"}
    assert differences(doc) == [
        "DeleteAnswer.affected_exports: required on the client only",
        "Overview.feedback_rate: in the client, not on the server",
        "Storage.hot_bytes: type str on the server, int in the client",
    ]


def test_a_nullable_change_and_an_enum_value_are_drift(openapi: Dict[str, Any]) -> None:
    doc = copy.deepcopy(openapi)
    doc["components"]["schemas"]["FullRecord"]["properties"]["intent"] = {"type": "string"}
    doc["components"]["schemas"]["FeedbackType"]["enum"].append("star")
    assert sorted(differences(doc)) == [
        "FullRecord.intent: type str on the server, None|str in the client",
        "enum FeedbackType: server ['edit', 'report', 'star', 'thumbs_down', 'thumbs_up'], "
        "client ['edit', 'report', 'thumbs_down', 'thumbs_up']",
    ]


def test_a_new_route_a_removed_route_and_a_new_query_parameter_are_drift(openapi: Dict[str, Any]) -> None:
    doc = copy.deepcopy(openapi)
    doc["paths"]["/api/feedback/summary"] = {"get": {"operationId": "summary", "responses": {}}}
    del doc["paths"]["/api/platforms"]["post"]
    doc["paths"]["/api/examples"]["get"]["parameters"].append(
        {"name": "tag", "in": "query", "required": False, "schema": {"type": "string"}})
    assert differences(doc) == [
        "route GET /api/feedback/summary: on the server, not in the client",
        "route POST /api/platforms: in the client, not on the server",
        "route GET /api/examples: query ['platform', 'tag'] on the server, ['platform'] in the client",
    ]


def test_a_new_schema_and_a_changed_answer_are_drift(openapi: Dict[str, Any]) -> None:
    doc = copy.deepcopy(openapi)
    doc["components"]["schemas"]["Summary"] = {"type": "object", "properties": {}}
    ok = doc["paths"]["/api/feedback/submit"]["post"]["responses"]
    ok["200"] = ok["201"]
    assert differences(doc) == [
        "route POST /api/feedback/submit: success answers {200: 'FeedbackReceipt', 201: 'FeedbackReceipt'} "
        "on the server, {201: 'FeedbackReceipt'} in the client",
        "schema Summary: on the server, not in the client",
    ]
