"""The API docs offline: Swagger UI's page and every file it loads come from this server (from the installed
swagger-ui-py), and the OpenAPI document declares both ways of sending an API key so "Authorize" works."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from litestar.testing import TestClient

from tests.support.embedded import embedded_client

PROTECTED_OPERATION = ("/api/tasks/", "get")
OPEN_OPERATION = ("/health/live", "get")
DOCS_KEY = "docs-key-of-16-characters-or-more"


class Links(HTMLParser):
    """Every URL a page loads or links to: src and href of any tag."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def links_of(html: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    return parser.urls


@pytest.fixture(scope="module")
def keyed_api(tmp_path_factory: pytest.TempPathFactory):
    with embedded_client(tmp_path_factory.mktemp("docs-keyed"), threads=1,
                         env={"TRANSMUTE_API_KEYS": DOCS_KEY}) as client:
        yield client


@pytest.mark.parametrize("page", ["/schema/swagger", "/"])
def test_a_page_loads_only_files_this_server_serves(api: TestClient, page: str) -> None:
    response = api.get(page)
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    urls = [url for url in links_of(response.text) if not url.startswith("data:")]
    assert urls, "the page loads nothing?"
    for url in urls:
        assert not urlsplit(url).netloc, f"{page} loads {url} from another host"
        assert api.get(url).status_code == 200, url


def test_the_web_page_says_its_charset_once_in_its_content_type(api: TestClient) -> None:
    assert api.get("/").headers["content-type"] == "text/html; charset=utf-8"


def test_the_swagger_page_runs_the_swagger_ui_bundle_of_the_installed_package(api: TestClient) -> None:
    urls = links_of(api.get("/schema/swagger").text)
    (bundle,) = [url for url in urls if url.endswith("swagger-ui-bundle.js")]
    served = api.get(bundle)
    assert "javascript" in served.headers["content-type"]
    assert "SwaggerUIBundle" in served.text[:2000]


def test_the_openapi_document_declares_a_bearer_and_an_x_api_key_scheme(api: TestClient) -> None:
    schemes = api.get("/schema/openapi.json").json()["components"]["securitySchemes"]
    by_type = {scheme["type"]: scheme for scheme in schemes.values()}
    assert by_type["http"]["scheme"] == "bearer"
    assert by_type["apiKey"]["in"] == "header" and by_type["apiKey"]["name"] == "X-API-Key"


def test_without_keys_the_api_routes_take_a_key_or_none_and_health_takes_none(api: TestClient) -> None:
    spec = api.get("/schema/openapi.json").json()
    path, method = PROTECTED_OPERATION
    security = spec["paths"][path][method]["security"]
    assert {} in security and len(security) == 3
    assert "security" not in spec["paths"][OPEN_OPERATION[0]][OPEN_OPERATION[1]]


def test_with_keys_every_api_and_media_route_requires_one_of_the_two_schemes(keyed_api: TestClient) -> None:
    spec = keyed_api.get("/schema/openapi.json").json()
    schemes = set(spec["components"]["securitySchemes"])
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if path.startswith(("/api/", "/media/")):
                choices = [tuple(choice) for choice in operation["security"]]
                assert sorted(choices) == sorted((name,) for name in schemes), (path, method)
                assert "ErrorResponse" in str(operation["responses"]["401"]), (path, method)
            else:
                assert "security" not in operation, (path, method)


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_a_key_sent_as_either_scheme_says_is_accepted(keyed_api: TestClient, header: str) -> None:
    spec = keyed_api.get("/schema/openapi.json").json()
    scheme = {scheme["type"]: scheme for scheme in spec["components"]["securitySchemes"].values()}
    headers = ({"Authorization": f"{scheme['http']['scheme'].capitalize()} {DOCS_KEY}"} if header == "Authorization"
               else {scheme["apiKey"]["name"]: DOCS_KEY})
    assert keyed_api.get("/api/tasks/").status_code == 401
    assert keyed_api.get("/api/tasks/", headers=headers).status_code == 200


def test_the_page_and_the_docs_stay_open_when_keys_are_on(keyed_api: TestClient) -> None:
    for path in ("/", "/web/app.js", "/schema/swagger", "/schema/openapi.json"):
        assert keyed_api.get(path).status_code == 200, path


def test_an_unknown_page_asset_is_a_json_404(api: TestClient) -> None:
    response = api.get("/web/nothing-here.js")
    assert response.status_code == 404
    assert response.json()["success"] is False


@pytest.mark.parametrize("path", ["/schema/redoc", "/schema/scalar", "/schema/nothing"])
def test_an_api_docs_page_that_is_not_offered_is_a_json_404(api: TestClient, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["success"] is False and "/schema" in response.json()["error"]


def test_the_wheel_carries_the_page_files(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(root)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("transmute-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("index.html", "app.js", "app.css"):
        assert f"transmute/services/api/web/{name}" in names
