"""The health check and the OpenAPI document."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import create_engine


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
                if int(status) >= 400 and path != "/api/health":
                    schema = answer["content"]["application/json"]["schema"]
                    # /v1 speaks OpenAI's error shape, for OpenAI's clients.
                    shape = "OpenAIError" if path.startswith("/v1/") else "Error"
                    assert schema == {"$ref": f"#/components/schemas/{shape}"}, (path, status)
    ask = doc["paths"]["/api/ask"]["post"]
    assert ask["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/AskRequest"
    )
    assert "text/event-stream" in doc["paths"]["/chat/ask"]["post"]["responses"]["200"]["content"]


def test_openapi_merges_the_paths_a_blueprint_module_documents(app: Flask) -> None:
    """Serving and the learning loop document their endpoints without editing openapi.py."""
    import sys
    import types

    from flask import Blueprint

    from web.openapi import collect, errors, json_response

    module = types.ModuleType("tests_web_fake_blueprint")
    module.OPENAPI_PATHS = {  # type: ignore[attr-defined]
        "/v9/things": {
            "get": {
                "summary": "Things",
                "responses": {
                    "200": json_response({"$ref": "#/components/schemas/Thing"}, "ok"),
                    **errors(401),
                },
            }
        },
        "/api/health": {"post": {"summary": "added beside the existing get", "responses": {}}},
    }
    module.OPENAPI_SCHEMAS = {"Thing": {"type": "object"}}  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        app.register_blueprint(Blueprint("fake_things", module.__name__))
        doc = collect(app)
    finally:
        del sys.modules[module.__name__]
    assert doc["paths"]["/v9/things"]["get"]["summary"] == "Things"
    assert set(doc["paths"]["/api/health"]) == {"get", "post"}
    assert doc["components"]["schemas"]["Thing"] == {"type": "object"}
    assert "/api/review" in doc["paths"] and "/api/admin/users/{user_id}" in doc["paths"]
