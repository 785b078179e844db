"""Every route of the contract through the client, against the real `collector serve`."""

import hashlib
import uuid
from typing import Callable

import pytest

from collector_client import ApiError, AsyncClient, Client, CollectorError, uuid7_str, uuid7_time_ms
from conftest import Server, total_records

N8N_WORKFLOW = {
    "nodes": [
        {"name": "Webhook", "type": "n8n-nodes-base.webhookTrigger", "parameters": {"path": "lead"}},
        {"name": "Slack", "type": "n8n-nodes-base.slack", "parameters": {"channel": "#sales"}},
    ],
    "connections": {"Webhook": {"main": [[{"node": "Slack", "type": "main", "index": 0}]]}},
}


def interaction(user_id: str, msg: str = "Post new leads to Slack") -> dict:
    return {
        "user_id": user_id,
        "platform": "n8n",
        "kind": "workflow_generation",
        "user_message": msg,
        "ai_response": "Here is a workflow.",
        "workflow": N8N_WORKFLOW,
        "processing_time_ms": 850,
        "model_version": "demo-1",
        "metadata": {"session": "s-1"},
    }


def test_health_needs_no_token(server: Server) -> None:
    with Client(server.url) as anon:
        h = anon.health()
    assert h["status"] == "ok" and h["backend"] == "local" and h["version"]


def test_log_and_get_round_trip(service: Client, user_id: str) -> None:
    receipt = service.log_interaction(interaction(user_id))
    assert "interaction_id" in receipt
    iid = receipt["interaction_id"]  # type: ignore[typeddict-item]
    # The client made the id: a UUIDv7 of about now.
    assert uuid.UUID(iid).version == 7
    rec = service.get_interaction(iid)
    assert rec["user_id"] == user_id
    assert rec["workflow"] == N8N_WORKFLOW
    assert rec["metadata"] == {"session": "s-1"}
    assert rec["processing_time_ms"] == 850
    assert rec["kind"] == "workflow_generation"
    assert rec["feedback"] == [] and rec["validations"] == [] and rec["archived"] is False


def test_replaying_the_same_interaction_id_does_not_duplicate(service: Client, user_id: str) -> None:
    before = total_records(service)
    body = dict(interaction(user_id), interaction_id=uuid7_str())
    first = service.log_interaction(body)
    second = service.log_interaction(body)  # what a retry after a lost answer sends
    assert first == second, "a replay answers the same receipt"
    assert total_records(service) == before + 1, "the replay stored nothing new"
    # The same id with other content is a conflict, raised as a typed error.
    with pytest.raises(ApiError) as e:
        service.log_interaction(dict(body, user_message="something else"))
    assert (e.value.status, e.value.code) == (409, "conflict")
    assert total_records(service) == before + 1


def test_errors_carry_status_code_message_and_details(service: Client, server: Server) -> None:
    with pytest.raises(ApiError) as e:
        service.log_interaction({"platform": "nope!", "user_message": "  "})  # type: ignore[typeddict-item]
    err = e.value
    assert err.status == 400 and err.code == "validation_failed" and err.message
    fields = {d["field"] for d in err.details}
    assert {"platform", "user_message"} <= fields, err.details
    with Client(server.url, "not-a-jwt") as bad:
        with pytest.raises(ApiError) as e:
            bad.stats()
    assert (e.value.status, e.value.code) == (401, "unauthenticated")
    assert isinstance(e.value, CollectorError)


def test_users_see_only_their_own(service: Client, as_user: Callable[[str], Client], user_id: str) -> None:
    iid = service.log_interaction(interaction(user_id))["interaction_id"]  # type: ignore[typeddict-item]
    other = as_user(f"{user_id}-other")
    with pytest.raises(ApiError) as e:
        other.get_interaction(iid)
    assert (e.value.status, e.value.code) == (404, "not_found")
    assert as_user(user_id).get_interaction(iid)["interaction_id"] == iid


def test_list_pages_newest_first(as_user: Callable[[str], Client], user_id: str) -> None:
    me = as_user(user_id)
    ids = [me.log_interaction({"platform": "zapier", "user_message": f"m{i}"})["interaction_id"]  # type: ignore[typeddict-item]
           for i in range(5)]
    page = me.list_interactions(limit=2)
    assert [r["interaction_id"] for r in page["items"]] == ids[::-1][:2]
    assert page["next_cursor"]
    assert [r["interaction_id"] for r in me.iter_interactions(page_size=2)] == ids[::-1]
    assert me.list_interactions(platform="make")["items"] == []


def test_batch_one_bad_item_fails_alone(service: Client, user_id: str) -> None:
    before = total_records(service)
    answer = service.log_batch([interaction(user_id, "a"), {"platform": "n8n", "user_id": user_id, "user_message": ""},
                                interaction(user_id, "c")])
    statuses = [(r["index"], r["status"]) for r in answer["results"]]
    assert statuses == [(0, 201), (1, 400), (2, 201)]
    assert answer["results"][1]["error"]["code"] == "validation_failed"  # type: ignore[index]
    assert total_records(service) == before + 2
    with pytest.raises(ValueError):
        service.log_batch([interaction(user_id)] * 101)


def test_feedback_and_validation_show_on_the_record(service: Client, user_id: str) -> None:
    iid = service.log_interaction(interaction(user_id))["interaction_id"]  # type: ignore[typeddict-item]
    fb = service.submit_feedback({"interaction_id": iid, "feedback_type": "thumbs_up", "sentiment_score": 5})
    assert fb["interaction_id"] == iid
    v = service.validate_workflow({"platform": "n8n", "interaction_id": iid, "workflow": N8N_WORKFLOW,
                                   "original_workflow": {"nodes": []}})
    assert v["passed"] is True and v["errors"] == [] and v["score"] == 100
    assert v["diff"] is not None and "/connections" in v["diff"]["added"]
    bad = service.validate_workflow({"platform": "n8n", "user_id": user_id, "workflow": {"nodes": []}})
    assert bad["passed"] is False and bad["errors"]
    rec = service.get_interaction(iid)
    assert rec["has_feedback"] and rec["positive_feedback"] == 1 and rec["last_feedback_type"] == "thumbs_up"
    assert [f["feedback_id"] for f in rec["feedback"]] == [fb["feedback_id"]]
    assert [x["validation_id"] for x in rec["validations"]] == [v["validation_id"]]


def test_stats_readiness_and_archive(admin: Client, service: Client, user_id: str) -> None:
    before = admin.stats()
    service.log_interaction(interaction(user_id))
    after = admin.stats()
    assert after["overview"]["total_records"] == before["overview"]["total_records"] + 1
    assert after["by_platform"]["n8n"]["total"] == before["by_platform"].get("n8n", {"total": 0})["total"] + 1
    assert 0 <= after["overview"]["success_rate"] <= 1
    r = admin.readiness("n8n")
    assert r["platform"] == "n8n" and r["status"] in ("ready", "almost_ready", "not_ready")
    assert r["metrics"]["total_examples"] >= 1 and r["thresholds"]["total_examples"] == 50
    report = admin.archive({"dry_run": True, "days_old": 1})
    assert report["dry_run"] is True and report["archived_records"] == 0  # nothing is a day old
    assert report["after"] == report["before"]
    with pytest.raises(ApiError) as e:
        service.archive({"dry_run": True})
    assert e.value.status == 403


def test_export_streams_with_its_id_and_the_delete_names_it(
    admin: Client, service: Client, as_user: Callable[[str], Client], user_id: str
) -> None:
    iid = service.log_interaction(interaction(user_id, "export me"))["interaction_id"]  # type: ignore[typeddict-item]
    service.submit_feedback({"interaction_id": iid, "feedback_type": "thumbs_up"})
    with admin.export("n8n", with_feedback_only=True, include_metadata=True) as ex:
        assert ex.status == 200 and ex.content_type == "application/jsonl"
        assert ex.filename and ex.filename.startswith("training_data_n8n_")
        assert ex.archive_skipped_lines == 0
        raw = b"".join(ex.iter_bytes())
        export_id = ex.export_id
    lines = [line for line in raw.decode().splitlines() if line]
    import json

    records = [json.loads(line) for line in lines]
    assert any(r["messages"][1]["content"] == "export me" for r in records)
    assert all([m["role"] for m in r["messages"]] == ["system", "user", "assistant"] for r in records)
    assert export_id and uuid7_time_ms(export_id) > 0
    manifest = admin.get_export(export_id)
    assert manifest["lines"] == len(lines)
    assert manifest["sha256"] == hashlib.sha256(raw).hexdigest()
    assert manifest["filters"]["with_feedback_only"] is True
    assert export_id in [m["export_id"] for m in admin.list_exports(limit=100)["items"]]
    # The owner deletes the record: the answer names the export that held it.
    answer = as_user(user_id).delete_interaction(iid)
    assert answer["deleted"]["interactions"] == 1 and answer["deleted"]["feedback"] == 1
    assert export_id in answer["affected_exports"]
    with pytest.raises(ApiError) as e:
        admin.get_interaction(iid)
    assert e.value.status == 404
    with pytest.raises(ApiError) as e:
        admin.get_export(str(uuid.uuid4()))
    assert e.value.status == 404


def test_export_records_parse_one_by_one(admin: Client, service: Client, user_id: str) -> None:
    for i in range(3):
        service.log_interaction(interaction(user_id, f"rec {i}"))
    with admin.export("n8n", limit=2, success_only=True) as ex:
        recs = list(ex.iter_records())
    assert len(recs) == 2 and all("messages" in r for r in recs)


def test_deletes_by_user_and_by_admin(
    admin: Client, service: Client, as_user: Callable[[str], Client], user_id: str
) -> None:
    me = as_user(user_id)
    for i in range(2):
        me.log_interaction({"platform": "make", "user_message": f"mine {i}"})
    with me.my_data() as data:
        mine = list(data.iter_records())
    assert len(mine) == 2 and all(r["user_id"] == user_id for r in mine)
    assert data.archive_skipped_lines == 0
    answer = me.delete_my_data()
    assert answer["deleted"]["interactions"] == 2 and answer["affected_exports"] == []
    assert me.list_interactions()["items"] == []

    other = f"{user_id}-b"
    service.log_interaction(interaction(other))
    answer = admin.delete_user_data(other)
    assert answer["deleted"] == {"interactions": 1, "feedback": 0, "validation_logs": 0, "examples": 0,
                                 "archived_records": 0}
    assert admin.list_interactions(user_id=other)["items"] == []
    with pytest.raises(ApiError) as e:
        me.delete_interaction(str(uuid.uuid4()))
    assert e.value.status == 404


def test_examples_metrics_and_platforms(admin: Client, service: Client) -> None:
    ex = admin.add_example({"platform": "make", "user_message": "Copy rows", "ai_response": "Use Sheets.",
                            "tags": ["sheets"]})
    listed = admin.list_examples(platform="make")["items"]
    assert ex["example_id"] in [e["example_id"] for e in listed]
    assert admin.delete_example(ex["example_id"]) == {"deleted": {"examples": 1}}
    with pytest.raises(ApiError) as e:
        admin.delete_example(ex["example_id"])
    assert e.value.status == 404

    m = admin.add_training_metric({"platform": "n8n", "model": "ft-1", "dataset_size": 1200,
                                   "metrics": {"loss": 0.41}})
    items = admin.list_training_metrics(platform="n8n")["items"]
    assert items[0]["metric_id"] == m["metric_id"] and items[0]["metrics"]["loss"] == 0.41

    slug = f"p{uuid.uuid4().hex[:8]}"
    assert admin.add_platform(slug) == {"platform": slug, "added": True}
    assert admin.add_platform(slug) == {"platform": slug, "added": False}
    names = [p["platform"] for p in service.list_platforms()["items"]]
    assert names[:3] == ["n8n", "zapier", "make"] and slug in names
    assert service.log_interaction({"platform": slug, "user_id": "someone", "user_message": "hi"})


async def test_async_client_round_trip(server: Server, user_id: str) -> None:
    async with AsyncClient(server.url, server.token("ai-backend", "service")) as c:
        before = (await c.stats())["overview"]["total_records"]
        body = dict(interaction(user_id), interaction_id=uuid7_str())
        r1 = await c.log_interaction(body)
        r2 = await c.log_interaction(body)
        assert r1 == r2
        rec = await c.get_interaction(body["interaction_id"])
        assert rec["user_message"] == body["user_message"]
        assert (await c.stats())["overview"]["total_records"] == before + 1
        with pytest.raises(ApiError) as e:
            await c.get_interaction(str(uuid.uuid4()))
        assert e.value.code == "not_found"
    async with AsyncClient(server.url, server.token("root", "admin")) as a:
        async with a.export("n8n", success_only=False) as ex:
            lines = [line async for line in ex.aiter_lines()]
        assert lines and ex.export_id
        assert (await a.get_export(ex.export_id))["lines"] == len(lines)


def test_archived_records_are_read_exported_and_erased(admin: Client, service: Client, user_id: str) -> None:
    from datetime import datetime, timedelta, timezone

    old = (datetime.now(timezone.utc) - timedelta(days=3)).isoformat().replace("+00:00", "Z")
    body = {"user_id": user_id, "platform": "zapier", "user_message": "an old one", "ai_response": "Use Zapier.",
            "created_at": old}
    iid = service.log_interaction(body)["interaction_id"]  # type: ignore[typeddict-item,arg-type]
    report = admin.archive({"days_old": 1, "platform": "zapier", "wait": True})
    assert report["dry_run"] is False and report["complete"] is True
    assert report["archived_records"] >= 1
    assert any(a["platform"] == "zapier" and a["record_count"] >= 1 for a in report["archives"])
    assert admin.get_interaction(iid)["archived"] is True
    with admin.export("zapier", include_archived=True) as ex:
        held = [r for r in ex.iter_records() if r["messages"][1]["content"] == "an old one"]
    assert len(held) >= 1 and ex.export_id and ex.archive_skipped_lines == 0
    answer = admin.delete_user_data(user_id)
    assert answer["deleted"]["interactions"] == 1 and answer["deleted"]["archived_records"] == 1
    assert answer["pending_erasure"] == {"archive_objects": 1}
    assert ex.export_id in answer["affected_exports"]
    with pytest.raises(ApiError) as e:
        admin.get_interaction(iid)
    assert e.value.status == 404
