"""OpenAPI details Litestar cannot infer: both bodies of the create route (one schema per format, from its
plugin), the batch body, errors and files, and the API-key schemes."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import msgspec
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
)
from litestar.openapi.spec import Parameter as OpenAPIParameter
from litestar.openapi.spec.enums import OpenAPIType

from transmute.core.formats import OutputFormat
from transmute.core.models import WEBHOOK_EVENTS
from transmute.core.options import describe_options
from transmute.core.params import DEFAULT_FORMAT
from transmute.core.plugins import output_formats
from transmute.core.wire import BatchRequest, ErrorResponse, NotReadyResponse
from transmute.services.api.security import is_protected


def _schema_of(struct: type) -> Schema:
    """A Litestar Schema from msgspec's JSON schema of a Struct (inlined, no $refs)."""
    (_, ), components = msgspec.json.schema_components([struct], ref_template="{name}")
    raw = components[struct.__name__]
    properties = {name: Schema(**_clean(value)) for name, value in raw["properties"].items()}
    return Schema(type=OpenAPIType.OBJECT, properties=properties, required=raw.get("required"),
                  description=raw.get("description"))


def _clean(value: dict) -> dict:
    """Keep the JSON-schema keywords Litestar's Schema takes, turned into its types."""
    out: dict = {}
    for key, item in value.items():
        if key == "anyOf":
            out["one_of"] = [Schema(**_clean(choice)) for choice in item]
        elif key == "items":
            out["items"] = Schema(**_clean(item))
        elif key == "type":
            out["type"] = OpenAPIType(item)
        elif key in ("minimum", "maximum", "default", "description", "enum", "title", "pattern"):
            out[key] = item
        elif key in ("minLength", "maxLength"):
            out["min_length" if key == "minLength" else "max_length"] = item
    return out


def options_schema_name(output_format: OutputFormat) -> str:
    """The name of a format's options in the OpenAPI components (`GifOptions`)."""
    return "".join(part.capitalize() for part in re.split(r"[^a-z0-9]+", output_format.name)) + "Options"


def options_schema(output_format: OutputFormat) -> Schema:
    """A format's options, as its plugin declares them; `format` names it (and may be left out for gif)."""
    schema = _schema_of(output_format.options)
    properties = dict(schema.properties or {})
    for option in describe_options(output_format.options):
        if option.choices:  # in the order the plugin wrote them (msgspec's schema sorts them)
            properties[option.name] = dataclasses.replace(properties[option.name], enum=option.choices)
    properties["format"] = Schema(type=OpenAPIType.STRING, enum=[output_format.name],
                                  description=f"Target format: {output_format.description}")
    required = [] if output_format.name == DEFAULT_FORMAT else ["format"]
    return Schema(type=OpenAPIType.OBJECT, properties=properties, required=required or None,
                  title=options_schema_name(output_format), description=schema.description)


def _create_body(output_format: OutputFormat, source: dict[str, Schema], required: list[str]) -> Schema:
    options = options_schema(output_format)
    return Schema(type=OpenAPIType.OBJECT, properties={**source, **(options.properties or {})},
                  required=[*required, *(options.required or [])] or None, title=options.title,
                  description=options.description)


WEBHOOK_URL = Schema(type=OpenAPIType.STRING, max_length=2048, description=(
    "Where to POST the task's status JSON on its events, signed per Standard Webhooks (headers webhook-id, "
    "webhook-timestamp, webhook-signature); the same rules as a source URL. Needs TRANSMUTE_WEBHOOK_SECRET."))
WEBHOOK_EVENTS_DESCRIPTION = "Which events are delivered, among progress, done, failed, cancelled (default " \
                             "done,failed,cancelled)"


def _multipart_schema() -> Schema:
    source = {"file": Schema(type=OpenAPIType.STRING, format="binary", description="The video to convert."),
              "url": Schema(type=OpenAPIType.STRING, description="Instead of a file: a URL to fetch."),
              "webhook_url": WEBHOOK_URL,
              "webhook_events": Schema(type=OpenAPIType.STRING,
                                       description=f"{WEBHOOK_EVENTS_DESCRIPTION}, separated by commas.")}
    return Schema(any_of=[_create_body(fmt, source, []) for fmt in output_formats().values()],
                  description="Upload a video (booleans as true/false, 1/0, yes/no, on/off); the other fields "
                  "are the options of the chosen format: one schema per installed format.")


def _json_schema() -> Schema:
    source = {"url": Schema(type=OpenAPIType.STRING, max_length=2048,
                            description="URL of the video to convert (http or https)."),
              "webhook_url": WEBHOOK_URL,
              "webhook_events": Schema(one_of=[
                  Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.STRING, enum=list(WEBHOOK_EVENTS))),
                  Schema(type=OpenAPIType.STRING)], description=f"{WEBHOOK_EVENTS_DESCRIPTION}: a list, or names "
                                                               "separated by commas.")}
    return Schema(any_of=[_create_body(fmt, source, ["url"]) for fmt in output_formats().values()],
                  description="Create a task from a URL the worker downloads; the other fields are the options "
                  "of the chosen format.")


@dataclass
class CreateOperation(Operation):
    """The create route's operation, with both request bodies it accepts."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="A multipart upload with a `file` field, or a JSON object with a `url` field. "
            "Every other field is an optional option of the chosen `format` (gif when none is given); an "
            "option the format does not have is a 400.",
            content={
                "multipart/form-data": OpenAPIMediaType(schema=_multipart_schema()),
                "application/json": OpenAPIMediaType(schema=_json_schema()),
            },
        )
        self.parameters = [*(self.parameters or []), OpenAPIParameter(
            name="Idempotency-Key", param_in="header", required=False,
            schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=255),
            description="Makes the create safe to send again: the same key with the same request within 24 h "
            "answers the same task (header `Idempotent-Replayed: true`), with another request a 422; 409 while "
            "the first is still being handled. Keys are per API key.")]


ERROR_DESCRIPTIONS = {
    400: "Bad request: a parameter is missing or has a bad value (the error names it).",
    404: "No such task (or route).",
    405: "The route does not take this method.",
    409: "The task is not in a state that allows this: no result yet (queued or running), failed or cancelled; "
         "cancel: already done or failed; retry: not failed or cancelled; create: a request with the same "
         "Idempotency-Key is still being handled.",
    410: "The task expired (its `expires_at` is past): result and download once the result's TTL is over "
         "(TRANSMUTE_RESULT_TTL), retry once its source's is (TRANSMUTE_SOURCE_TTL); its files are removed.",
    413: "The upload is larger than the limit (TRANSMUTE_MAX_UPLOAD_MB, 500 MB by default), or a JSON body "
         "larger than TRANSMUTE_MAX_JSON_KB (64 KB by default).",
    415: "The body is not of a type the route takes (create: multipart/form-data or application/json; "
         "batch POST: application/json).",
    422: "create: the Idempotency-Key was used before for another request (other parameters or source).",
    503: "The storage could not serve the file; create: the queue is full (TRANSMUTE_MAX_QUEUED), see Retry-After.",
    507: "create, embedded mode: the data folder's disk has less free space than TRANSMUTE_MIN_FREE_DISK_MB.",
}


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """The JSON error bodies a route may answer with, documented as ErrorResponse (409 as NotReadyResponse)."""
    return {
        code: ResponseSpec(NotReadyResponse if code == 409 else ErrorResponse, generate_examples=False,
                           description=ERROR_DESCRIPTIONS[code])
        for code in codes
    }


def file_response(media_type: str, description: str) -> dict[int, ResponseSpec]:
    """A 200 whose body is a file, not JSON."""
    return {200: ResponseSpec(bytes, generate_examples=False, media_type=media_type, description=description)}


@dataclass
class BatchPostOperation(Operation):
    """The batch download's POST: a JSON body with the ids."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description='The tasks whose files to bundle, as numbers or strings: {"task_ids": [1, 2, 3]} '
            "(at most 50).",
            content={"application/json": OpenAPIMediaType(schema=_schema_of(BatchRequest))},
        )


BEARER, API_KEY = "BearerAuth", "ApiKeyAuth"
SECURITY_SCHEMES = {
    BEARER: SecurityScheme(type="http", scheme="bearer",
                           description="An API key (TRANSMUTE_API_KEYS) as `Authorization: Bearer <key>`."),
    API_KEY: SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header",
                            description="An API key (TRANSMUTE_API_KEYS) as `X-API-Key: <key>`."),
}
"""The two ways to present a key (transmute.services.api.security accepts both): Swagger's "Authorize" sends them."""


def declare_security(schema: OpenAPI, *, keys_required: bool) -> None:
    """Every route that checks keys takes either scheme; while no key is configured, none (`{}`) too."""
    requirement = [{BEARER: []}, {API_KEY: []}, *([] if keys_required else [{}])]
    unauthorized = OpenAPIResponse(
        description="The API key is missing or not valid.",
        content={"application/json": OpenAPIMediaType(schema=Reference(ref="#/components/schemas/ErrorResponse"))},
    )
    for path, item in (schema.paths or {}).items():
        if not is_protected(path):
            continue
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method)
            if operation is None:
                continue
            operation.security = requirement
            if keys_required:
                operation.responses = {**(operation.responses or {}), "401": unauthorized}
