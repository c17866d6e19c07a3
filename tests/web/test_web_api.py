"""The health check and the OpenAPI document."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import create_engine

from assistant.services import Services
from tests.conftest import services_with_shared_models
from tests.web.conftest import provisioned_app


def test_health_needs_no_login_and_reports_the_database(app: Flask) -> None:
    response = app.test_client().get("/api/health")
    assert response.status_code == 200
    data = response.get_json()
    assert data["status"] == "ok"
    assert data["database"] is True
    assert data["loaded"]["llm"] is False  # nothing heavy loaded by a health check


def test_health_reports_an_unreachable_database(app: Flask) -> None:
    services = app.extensions["assistant"]
    services.db.dispose()
    services.db.engine = create_engine("sqlite:////nonexistent/dir/x.db")
    response = app.test_client().get("/api/health")
    assert response.status_code == 503
    assert response.get_json()["status"] == "degraded"
    assert response.get_json()["database"] is False


def test_ready_is_503_until_the_models_load_and_loads_nothing_itself(app: Flask) -> None:
    response = app.test_client().get("/api/ready")
    assert response.status_code == 503
    data = response.get_json()
    assert data["ready"] is False and data["database"] is True
    assert {"llm", "embedder", "scrubber"} <= set(data["waiting_for"])
    # Asking is not loading: a load balancer polling every second must not build the models.
    services = app.extensions["assistant"]
    assert not any(services.loaded(name) for name in ("llm", "embedder", "scrubber", "index"))


def test_ready_waits_for_the_index_version_then_says_ready(
    indexed_services: Services, shared_models: Services
) -> None:
    # A second process over the same data: the models are shared, its index is not read yet.
    services = services_with_shared_models(indexed_services.settings, shared_models)
    _ = services.llm
    client = provisioned_app(services=services).test_client()
    response = client.get("/api/ready")
    assert response.status_code == 503
    assert response.get_json()["waiting_for"] == ["index"]
    services.index.current()
    response = client.get("/api/ready")
    assert response.status_code == 200
    assert response.get_json() == {"ready": True, "database": True, "waiting_for": []}


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def test_openapi_describes_every_json_endpoint(app: Flask) -> None:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.1")
    expected = {
        (_openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(("/api/", "/chat/", "/passage/"))
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert expected - documented == set()
    assert {("/api/ask", "post"), ("/chat/ask", "post"), ("/api/health", "get")} <= documented


def test_openapi_references_resolve_and_errors_share_one_schema(app: Flask) -> None:
    doc = app.test_client().get("/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    assert schemas["Error"]["required"] == ["error", "message"]
    text = app.test_client().get("/openapi.json").get_data(as_text=True)
    refs = re.findall(r'"\$ref": ?"#/components/schemas/([A-Za-z]+)"', text)
    assert refs and set(refs) <= set(schemas)
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], (path, method)
            for status, answer in operation["responses"].items():
                # The probes answer 503 with their own report, for the load balancer.
                if int(status) >= 400 and path not in ("/api/health", "/api/ready"):
                    schema = answer["content"]["application/json"]["schema"]
                    # /v1 speaks OpenAI's error shape, for OpenAI's clients.
                    shape = "OpenAIError" if path.startswith("/v1/") else "Error"
                    assert schema == {"$ref": f"#/components/schemas/{shape}"}, (path, status)
    ask = doc["paths"]["/api/ask"]["post"]
    assert ask["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/AskRequest"
    )
    assert "text/event-stream" in doc["paths"]["/chat/ask"]["post"]["responses"]["200"]["content"]


def test_openapi_documents_a_new_blueprint_from_its_models(app: Flask) -> None:
    """A blueprint documents its endpoints with ``@operation`` alone: no edit to openapi.py,
    and the model that documents the body validates it."""
    from flask import Blueprint
    from pydantic import BaseModel, Field

    from web.openapi import Reply, collect, operation

    class ThingRequest(BaseModel):
        name: str = Field(min_length=1, max_length=10)

    class Thing(BaseModel):
        id: int

    things = Blueprint("fake_things", __name__, url_prefix="/v9")

    @things.post("/things")
    @operation("Add a thing", body=ThingRequest, ok={201: Reply("Added", Thing)}, errors=(400,))
    def add_thing(body: ThingRequest) -> tuple[dict[str, int], int]:
        return {"id": len(body.name)}, 201

    @things.get("/things/<int:thing_id>")
    @operation("One thing", ok={200: Reply("Found", Thing)}, errors=(404,))
    def get_thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    app.register_blueprint(things)
    doc = collect(app)
    added = doc["paths"]["/v9/things"]["post"]
    assert added["summary"] == "Add a thing"
    assert added["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ThingRequest"
    }
    assert doc["components"]["schemas"]["ThingRequest"]["properties"]["name"]["maxLength"] == 10
    assert doc["components"]["schemas"]["Thing"]["required"] == ["id"]
    (param,) = doc["paths"]["/v9/things/{thing_id}"]["get"]["parameters"]
    assert param["in"] == "path" and param["schema"]["type"] == "integer"
    assert "/api/review" in doc["paths"] and "/api/admin/users/{user_id}" in doc["paths"]

    client = app.test_client()
    assert client.post("/v9/things", json={"name": "box"}).get_json() == {"id": 3}
    refused = client.post("/v9/things", json={"name": "x" * 11})
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "invalid_input"
    assert "'name'" in refused.get_json()["message"]


def test_openapi_bounds_come_from_the_settings(app: Flask) -> None:
    doc = app.test_client().get("/openapi.json").get_json()
    settings = app.extensions["assistant"].settings
    schemas = doc["components"]["schemas"]
    assert schemas["Question"]["maxLength"] == settings.safety.max_question_chars
    assert schemas["Collection"]["enum"] == [*settings.collections, "", None]
    ask = schemas["AskRequest"]["properties"]
    assert ask["question"] == {"$ref": "#/components/schemas/Question"}
    assert ask["collection"]["$ref"] == "#/components/schemas/Collection"
