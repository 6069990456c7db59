"""OpenAPI post-processing: document the one error shape on every operation.

Every endpoint can answer 400 (bad input), 401 (no or bad credentials), 403, 404, 409 (conflict,
idempotency reuse), 429 (throttled) and 500 with the same body, so the schema says so once here
instead of in every view, and schema-driven clients and fuzzers know what to expect.
"""
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": True},
            },
        }
    },
}

ERROR_STATUSES = {
    "400": "Invalid input; nothing was written.",
    "401": "Missing or invalid credentials.",
    "403": "Not allowed.",
    "404": "Not found (or not yours).",
    "405": "Method not allowed.",
    "406": "Not acceptable.",
    "409": "Conflicts with the current state or an earlier use of the idempotency key.",
    "415": "Unsupported media type.",
    "429": "Too many requests; retry later.",
    "500": "Server error; retry later.",
}


def add_error_responses(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                responses.setdefault(
                    status, {"description": description, "content": {"application/json": {"schema": reference}}}
                )
    return result
