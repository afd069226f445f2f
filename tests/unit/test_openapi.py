"""/openapi.json describes exactly the machine endpoints the app serves, from the schemas
they validate with."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from recovery.schemas.webhooks import MAX_BODY_CHARS, GenericMissedCall, TwilioInboundSms

MACHINE = ("/webhooks/", "/api/")


def served(app: Flask) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(MACHINE):
            for method in rule.methods or ():
                if method not in {"HEAD", "OPTIONS"}:
                    routes.add((method.lower(), rule.rule))
    return routes


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, ops in doc["paths"].items() for method in ops}


def test_the_document_is_served_and_names_every_machine_route_and_no_other(
    app: Flask, client: FlaskClient
) -> None:
    response = client.get("/openapi.json")

    assert response.status_code == 200 and response.is_json
    doc = response.json
    assert doc is not None and doc["openapi"].startswith("3.")
    assert documented(doc) == served(app)
    assert len(served(app)) >= 9  # seven webhooks and two API endpoints, today


def test_request_bodies_are_the_schemas_the_endpoints_validate_with(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").json
    assert doc is not None
    schemas = doc["components"]["schemas"]
    sms = doc["paths"]["/webhooks/twilio/sms"]["post"]["requestBody"]["content"]
    assert sms["application/x-www-form-urlencoded"]["schema"]["$ref"].endswith("/TwilioInboundSms")
    assert schemas["TwilioInboundSms"]["properties"]["Body"]["maxLength"] == MAX_BODY_CHARS
    assert set(schemas["TwilioInboundSms"]["required"]) == {
        f.alias for f in TwilioInboundSms.model_fields.values() if f.is_required()
    }
    generic = schemas["GenericMissedCall"]
    assert set(generic["properties"]) == {
        f.alias or name for name, f in GenericMissedCall.model_fields.items()
    }


def test_every_reference_resolves_and_every_webhook_documents_its_refusals(
    client: FlaskClient,
) -> None:
    doc = client.get("/openapi.json").json
    assert doc is not None
    schemas = doc["components"]["schemas"]

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas
    for path, ops in doc["paths"].items():
        for operation in ops.values():
            assert operation["security"], path
            if path.startswith("/webhooks/"):
                assert {"400", "403", "413"} <= set(operation["responses"]), path
