"""OpenAPI at /schema: every route, both bodies of the create route, the response models; and /api/formats/."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

SPEC_PATHS = {  # as the spec writes them, with their trailing slash (both forms are served)
    "/api/tasks/create/": {"post"},
    "/api/tasks/{task_id}/status/": {"get"},
    "/api/tasks/{task_id}/result/": {"get"},
    "/api/tasks/{task_id}/download/": {"get"},
    "/api/tasks/{task_id}/cancel/": {"post"},
    "/api/tasks/{task_id}/retry/": {"post"},
    "/api/tasks/{task_id}/": {"delete"},
    "/api/tasks/{task_id}/events/": {"get"},  # issue 15: live progress (Server-Sent Events)
    "/api/tasks/": {"get"},
    "/api/tasks/batch-download/": {"get", "post"},
    "/api/formats/": {"get"},
    "/media/results/{filename}": {"get"},
    "/health/live": {"get"},
    "/health/ready": {"get"},
}


@pytest.fixture(scope="module")
def openapi(api: TestClient) -> dict:
    response = api.get("/schema/openapi.json")
    assert response.status_code == 200
    return response.json()


def schema_of(openapi: dict, path: str, method: str, status: str, media_type: str = "application/json") -> dict:
    schema = openapi["paths"][path][method]["responses"][status]["content"][media_type]["schema"]
    if "$ref" in schema:
        return openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def test_the_schema_lists_every_route_with_its_methods(openapi: dict) -> None:
    found = {path: set(operations) - {"parameters"} for path, operations in openapi["paths"].items()}
    assert found == SPEC_PATHS


def test_the_create_request_body_is_multipart_with_a_file_or_json_with_a_url(openapi: dict) -> None:
    content = openapi["paths"]["/api/tasks/create/"]["post"]["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "application/json"}
    # one schema per installed format; gif's here
    (multipart,) = [schema for schema in content["multipart/form-data"]["schema"]["anyOf"]
                    if schema["properties"]["format"]["enum"] == ["gif"]]
    (json_body,) = [schema for schema in content["application/json"]["schema"]["anyOf"]
                    if schema["properties"]["format"]["enum"] == ["gif"]]
    assert multipart["properties"]["file"]["format"] == "binary"
    assert json_body["required"] == ["url"]
    parameters = {"format", "width", "fps", "start_time", "end_time", "quality", "speed", "grayscale", "reverse",
                  "boomerang", "high_quality", "dither", "keep_original_size", "loop", "colors", "crop", "lossy",
                  "max_size_kb"}
    assert parameters <= set(multipart["properties"])
    assert parameters | {"url", "webhook_url", "webhook_events"} == set(json_body["properties"])
    assert json_body["properties"]["format"]["enum"] == ["gif"]
    titles = [schema["title"] for schema in content["application/json"]["schema"]["anyOf"]]
    assert {"GifOptions", "Mp4Options", "WebmOptions"} <= set(titles)


def test_each_format_has_its_options_schema_with_ranges_and_descriptions(openapi: dict) -> None:
    content = openapi["paths"]["/api/tasks/create/"]["post"]["requestBody"]["content"]
    (gif,) = [schema for schema in content["application/json"]["schema"]["anyOf"] if schema["title"] == "GifOptions"]
    assert gif["properties"]["fps"]["minimum"] == 1 and gif["properties"]["fps"]["maximum"] == 50
    assert gif["properties"]["dither"]["enum"][0] == "bayer"
    assert gif["properties"]["quality"]["description"] == "Palette size and encoder effort."
    assert gif["properties"]["loop"]["maximum"] == 65535 and gif["properties"]["lossy"]["maximum"] == 200
    (crop,) = [choice for choice in gif["properties"]["crop"]["oneOf"] if choice.get("type") == "string"]
    assert crop["pattern"].startswith("^") and "x:y:w:h" in crop["description"]


@pytest.mark.parametrize(("path", "method", "fields"), [
    ("/api/tasks/create/", "post", {"success", "task_id", "status", "message", "api_urls"}),
    ("/api/tasks/{task_id}/status/", "get", {"success", "task_id", "status", "progress", "created_at", "updated_at",
                                            "started_at", "completed_at", "error_message", "is_finished",
                                            "is_active", "duration_seconds", "metadata", "warnings", "attempt",
                                            "expires_at", "webhook"}),
    ("/api/tasks/{task_id}/cancel/", "post", {"success", "task_id", "status", "progress", "created_at",
                                              "updated_at", "started_at", "completed_at", "error_message",
                                              "is_finished", "is_active", "duration_seconds", "metadata",
                                              "warnings", "attempt", "expires_at", "webhook"}),
    ("/api/tasks/{task_id}/", "delete", {"success", "task_id", "message"}),
    ("/api/tasks/", "get", {"success", "tasks", "pagination"}),
    ("/api/formats/", "get", {"success", "formats"}),
])
def test_json_responses_are_described_by_their_models(openapi: dict, path: str, method: str, fields: set) -> None:
    assert set(schema_of(openapi, path, method, "200")["properties"]) == fields


def test_the_result_response_is_either_the_done_or_the_failed_shape(openapi: dict) -> None:
    schema = openapi["paths"]["/api/tasks/{task_id}/result/"]["get"]["responses"]["200"]["content"][
        "application/json"]["schema"]
    names = {choice["$ref"].rsplit("/", 1)[-1] for choice in schema["oneOf"]}
    assert names == {"ResultResponse", "FailedResultResponse"}
    for name in ("ResultResponse", "FailedResultResponse", "ResultInfo", "TaskMetadata", "TaskSummary", "Pagination",
                 "ApiUrls", "ErrorResponse", "NotReadyResponse"):
        assert name in openapi["components"]["schemas"]


def test_errors_are_documented_as_the_json_error_body(openapi: dict) -> None:
    assert set(schema_of(openapi, "/api/tasks/create/", "post", "400")["properties"]) == {"success", "error", "details"}
    assert set(schema_of(openapi, "/api/tasks/{task_id}/status/", "get", "404")["properties"]) >= {"success", "error"}
    assert "progress" in schema_of(openapi, "/api/tasks/{task_id}/download/", "get", "409")["properties"]
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    assert "ErrorResponse" in str(response) or "NotReadyResponse" in str(response), (path, method)


def test_file_routes_are_documented_as_files(openapi: dict) -> None:
    assert "application/zip" in openapi["paths"]["/api/tasks/batch-download/"]["get"]["responses"]["200"]["content"]
    post = openapi["paths"]["/api/tasks/batch-download/"]["post"]
    assert "application/zip" in post["responses"]["200"]["content"]
    assert "task_ids" in post["requestBody"]["content"]["application/json"]["schema"]["properties"]
    download = openapi["paths"]["/api/tasks/{task_id}/download/"]["get"]["responses"]["200"]
    assert "application/json" not in download["content"]


def test_the_listing_parameters_are_documented_with_their_values(openapi: dict) -> None:
    parameters = {p["name"]: p for p in openapi["paths"]["/api/tasks/"]["get"]["parameters"]}
    assert set(parameters) == {"page", "per_page", "status", "format", "order"}
    assert "-updated_at" in str(parameters["order"])
    assert "running" in str(parameters["status"])


def test_the_schema_has_a_browsable_page(api: TestClient) -> None:
    response = api.get("/schema/swagger")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]


def test_formats_lists_gif_with_its_mime_type_and_parameters(api: TestClient) -> None:
    for path in ("/api/formats/", "/api/formats"):
        body = api.get(path).json()
        assert body["success"] is True
        gif = {fmt["name"]: fmt for fmt in body["formats"]}["gif"]
        assert gif["extension"] == "gif" and gif["mime_type"] == "image/gif"
        assert {"width", "fps", "dither"} <= {parameter["name"] for parameter in gif["parameters"]}


def test_cancelled_is_a_status_like_the_others_in_the_schema(openapi: dict) -> None:
    states = ["queued", "running", "done", "failed", "cancelled"]
    assert sorted(schema_of(openapi, "/api/tasks/{task_id}/status/", "get", "200")["properties"]["status"]["enum"]) \
        == sorted(states)
    (status_filter,) = [parameter for parameter in openapi["paths"]["/api/tasks/"]["get"]["parameters"]
                        if parameter["name"] == "status"]
    assert "cancelled" in str(status_filter["schema"])
