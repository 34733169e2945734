"""OpenAPI details Litestar cannot infer: both bodies of the create route, the batch body, errors and files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType

from transmute.core.params import ConversionParams
from transmute.services.api.schemas import BatchRequest, ErrorResponse, NotReadyResponse


class CreateFromUrl(ConversionParams, kw_only=True):
    """Create a task from a URL the worker downloads (http or https)."""

    url: Annotated[str, msgspec.Meta(max_length=2048, description="URL of the video to convert.")]


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
        elif key in ("minimum", "maximum", "default", "description", "enum", "title"):
            out[key] = item
        elif key in ("minLength", "maxLength"):
            out["min_length" if key == "minLength" else "max_length"] = item
    return out


def _multipart_schema() -> Schema:
    schema = _schema_of(ConversionParams)
    properties = dict(schema.properties or {})
    properties["file"] = Schema(type=OpenAPIType.STRING, format="binary", description="The video to convert.")
    properties["url"] = Schema(type=OpenAPIType.STRING, description="Instead of a file: a URL to fetch.")
    return Schema(type=OpenAPIType.OBJECT, properties=properties,
                  description="Upload a video (booleans as true/false, 1/0, yes/no, on/off).")


@dataclass
class CreateOperation(Operation):
    """The create route's operation, with both request bodies it accepts."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="A multipart upload with a `file` field, or a JSON object with a `url` field. "
            "Every other field is an optional conversion parameter.",
            content={
                "multipart/form-data": OpenAPIMediaType(schema=_multipart_schema()),
                "application/json": OpenAPIMediaType(schema=_schema_of(CreateFromUrl)),
            },
        )


ERROR_DESCRIPTIONS = {
    400: "Bad request: a parameter is missing or has a bad value (the error names it).",
    404: "No such task (or route).",
    405: "The route does not take this method.",
    409: "The task has no result yet (queued or running), or it failed.",
    413: "The upload is larger than the limit (TRANSMUTE_MAX_UPLOAD_MB, 500 MB by default), or a JSON body "
         "larger than TRANSMUTE_MAX_JSON_KB (64 KB by default).",
    415: "The body is not of a type the route takes (create: multipart/form-data or application/json; "
         "batch POST: application/json).",
    503: "The storage could not serve the file.",
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
