"""The page at / in a real headless chromium: upload, progress, preview, download; the API's errors where they
belong; options generated from /api/formats/; the recent tasks; and the key a protected server wants."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.net import serving_folder
from tests.support.plugins import with_plugins
from tests.support.servers import Server, serving
from tests.support.tasks import create_upload, queue_upload, status

API_KEY = "web-page-test-key"

GIF_MAGIC = (b"GIF87a", b"GIF89a")

RECORD_PROGRESS = """
window.seenProgress = [];
new MutationObserver(() => window.seenProgress.push(document.getElementById("progress-text").textContent))
  .observe(document.getElementById("progress-text"), {childList: true, characterData: true, subtree: true});
"""
"""Keeps every text the progress label showed, in window.seenProgress."""


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`transmute serve` that wants the key API_KEY."""
    with serving(tmp_path_factory.mktemp("web-serve-keyed"), env={"TRANSMUTE_API_KEYS": API_KEY}) as started:
        yield started


def open_page(page: Page, server: Server) -> None:
    page.goto(server.url + "/")
    expect(page.locator("#format option")).not_to_have_count(0)


def convert(page: Page, path: Path) -> None:
    page.set_input_files("#file", str(path))
    page.click("#convert")


def test_a_video_converts_with_its_progress_shown_then_a_gif_preview_and_a_download(
        page: Page, server: Server, slow_clip: Path, tmp_path: Path) -> None:
    open_page(page, server)
    page.evaluate(RECORD_PROGRESS)
    convert(page, slow_clip)
    expect(page.locator("#task-section")).to_be_visible()
    expect(page.locator("#progress-text")).to_have_text("done 100%", timeout=90_000)
    seen = page.evaluate("window.seenProgress")
    assert any(text.startswith("running") for text in seen), seen
    assert page.locator("#progress").evaluate("bar => bar.value") == 100

    preview = page.locator("#preview img")
    expect(preview).to_be_visible()
    page.wait_for_function("() => document.querySelector('#preview img').complete")
    assert preview.evaluate("img => img.naturalWidth") == 320  # the source's width: the GIF decoded

    with page.expect_download() as download_info:
        page.click("#download")
    saved = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(saved)
    assert saved.suffix == ".gif" and saved.read_bytes()[:6] in GIF_MAGIC


def test_a_file_that_is_not_a_video_shows_the_apis_error_by_the_file_field(
        page: Page, server: Server, clips: dict[str, Path]) -> None:
    expected = create_upload(httpx.Client(), clips["text"], base=server.url).json()["error"]
    open_page(page, server)
    convert(page, clips["text"])
    expect(page.locator("#source-error")).to_have_text(expected)
    expect(page.locator("#task-section")).to_be_hidden()


def test_switching_format_shows_that_formats_options_from_api_formats(page: Page, server: Server) -> None:
    formats = {fmt["name"]: fmt for fmt in httpx.get(f"{server.url}/api/formats/").json()["formats"]}
    open_page(page, server)
    for name in ("mp4", "gif"):
        page.select_option("#format", name)
        expected = [parameter["name"] for parameter in formats[name]["parameters"] if parameter["name"] != "format"]
        shown = page.locator("#option-fields [name]").evaluate_all("inputs => inputs.map(input => input.name)")
        assert shown == expected
        for parameter in formats[name]["parameters"]:
            if parameter["name"] == "format":
                continue
            field = page.locator(f"#option-{parameter['name']}")
            kind = {"boolean": "checkbox", "integer": "number", "number": "number"}.get(parameter["type"])
            if parameter["type"] == "choice":
                assert field.evaluate("select => [...select.options].map(o => o.value)") == parameter["choices"]
            elif kind:
                assert field.get_attribute("type") == kind
            expect(page.get_by_label(parameter["name"].replace("_", " "), exact=True)).to_have_count(1)


def test_an_option_changed_on_the_page_is_sent_and_a_bad_one_shows_the_apis_error_beside_it(
        page: Page, server: Server, clips: dict[str, Path]) -> None:
    open_page(page, server)
    page.select_option("#format", "gif")
    page.fill("#option-fps", "500")
    convert(page, clips["small"])
    expect(page.locator("#error-fps")).to_contain_text("fps")
    expect(page.locator("#option-fps")).to_have_attribute("aria-invalid", "true")

    page.fill("#option-fps", "5")
    page.fill("#option-width", "64")
    page.click("#convert")
    expect(page.locator("#progress-text")).to_have_text("done 100%", timeout=60_000)
    task_id = page.locator("#task-id").text_content()
    params = status(httpx.Client(), task_id, base=server.url)["metadata"]["conversion_params"]
    assert params["fps"] == 5 and params["width"] == 64


def test_recent_tasks_can_be_filtered_cancelled_deleted_and_zipped(
        page: Page, server: Server, clips: dict[str, Path], slow_clip: Path) -> None:
    client = httpx.Client(timeout=30)
    done = [queue_upload(client, clips["small"], base=server.url, width=32, fps=2) for _ in range(2)]
    for task_id in done:
        server.wait_finished(client, task_id)
    # One worker: the first long task runs, the second waits in the queue.
    busy = queue_upload(client, slow_clip, base=server.url)
    waiting = queue_upload(client, slow_clip, base=server.url)

    open_page(page, server)
    for task_id in (*done, busy, waiting):
        expect(page.locator(f"#task-{task_id}")).to_be_visible()

    page.get_by_role("button", name=f"Cancel task {waiting}").click()
    expect(page.locator(f"#task-{waiting}")).to_have_attribute("data-status", "cancelled")
    page.get_by_role("button", name=f"Cancel task {busy}").click()
    expect(page.locator(f"#task-{busy}")).to_have_attribute("data-status", "cancelled")

    page.select_option("#status-filter", "done")
    expect(page.locator(f"#task-{waiting}")).to_have_count(0)
    statuses = page.locator("#tasks tbody tr").evaluate_all("rows => rows.map(row => row.dataset.status)")
    assert statuses and set(statuses) == {"done"}

    for task_id in done:
        page.get_by_label(f"Select task {task_id}").check()
    with page.expect_download() as download_info:
        page.click("#zip")
    archive = zipfile.ZipFile(io.BytesIO(Path(download_info.value.path()).read_bytes()))
    assert len(archive.namelist()) == 2

    page.select_option("#status-filter", "cancelled")
    page.get_by_role("button", name=f"Delete task {waiting}").click()
    expect(page.locator(f"#task-{waiting}")).to_have_count(0)
    assert client.get(f"{server.url}/api/tasks/{waiting}/status/").status_code == 404


def test_a_key_protected_server_asks_for_the_key_and_works_once_it_is_given(
        page: Page, keyed_server: Server, clips: dict[str, Path], tmp_path: Path) -> None:
    page.goto(keyed_server.url + "/")
    expect(page.locator("#key-section")).to_be_visible()
    expected = httpx.get(f"{keyed_server.url}/api/formats/").json()["error"]
    expect(page.locator("#key-error")).to_have_text(expected)

    page.fill("#api-key", "not-the-key")
    page.click("#key-form button")
    expect(page.locator("#key-error")).to_have_text("The API key is not valid.")

    page.fill("#api-key", API_KEY)
    page.click("#key-form button")
    expect(page.locator("#format option")).not_to_have_count(0)
    expect(page.locator("#key-error")).to_be_empty()

    convert(page, clips["small"])
    expect(page.locator("#progress-text")).to_have_text("done 100%", timeout=60_000)
    page.wait_for_function("() => document.querySelector('#preview img')?.naturalWidth > 0")
    with page.expect_download() as download_info:
        page.click("#download")
    assert Path(download_info.value.path()).read_bytes()[:6] in GIF_MAGIC

    page.reload()  # the key is kept in the browser's local storage
    expect(page.locator("#format option")).not_to_have_count(0)
    expect(page.locator("#tasks tbody tr")).to_have_count(1)


def test_a_pasted_url_converts_and_a_video_format_previews_as_a_video_that_plays(
        page: Page, server: Server, clips: dict[str, Path]) -> None:
    with serving_folder(clips["small"].parent) as base:
        open_page(page, server)
        page.fill("#url", f"{base}/{clips['small'].name}")
        page.select_option("#format", "webm")
        page.click("#convert")
        expect(page.locator("#progress-text")).to_have_text("done 100%", timeout=90_000)
    video = page.locator("#preview video")
    expect(video).to_be_visible()
    page.wait_for_function("() => document.querySelector('#preview video').videoWidth > 0")
    assert video.evaluate("video => video.videoWidth") == 160
    expect(page.locator("#download")).to_have_attribute("download", re.compile(r"\.webm$"))


def test_the_swagger_page_works_offline_and_its_authorize_sends_the_key(page: Page, keyed_server: Server) -> None:
    page.goto(keyed_server.url + "/schema/swagger")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("transmute")
    page.locator(".btn.authorize").first.click()
    dialog = page.locator(".modal-ux")
    expect(dialog).to_contain_text("ApiKeyAuth")
    expect(dialog).to_contain_text("BearerAuth")
    api_key = dialog.locator(".auth-container", has_text="ApiKeyAuth")
    api_key.locator("input").fill(API_KEY)
    api_key.get_by_role("button", name="Apply credentials").click()
    api_key.get_by_role("button", name="Close").click()

    operation = page.locator(".opblock", has_text="List tasks, filtered")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    expect(operation.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200")


def test_a_newly_installed_plugins_format_and_options_appear_on_the_page(
        page: Page, example_plugin: Path, tmp_path: Path) -> None:
    with serving(tmp_path, env=with_plugins(example_plugin)) as plugged:
        open_page(page, plugged)
        page.select_option("#format", "thumbs")
        expect(page.locator("#format-description")).not_to_be_empty()
        for option in ("count", "height"):
            field = page.get_by_label(option, exact=True)
            expect(field).to_have_attribute("type", "number")
        expect(page.locator("#option-count")).to_have_attribute("max", "20")


def test_a_url_that_is_not_a_video_fails_and_the_page_shows_the_tasks_error_message(
        page: Page, server: Server, clips: dict[str, Path]) -> None:
    with serving_folder(clips["text"].parent) as base:
        open_page(page, server)
        page.fill("#url", f"{base}/{clips['text'].name}")
        page.click("#convert")
        expect(page.locator("#progress-text")).to_have_text(re.compile(r"^failed"), timeout=90_000)
    task_id = page.locator("#task-id").text_content()
    failed = status(httpx.Client(), task_id, base=server.url)
    assert failed["status"] == "failed" and failed["error_message"]
    expect(page.locator("#task-error")).to_have_text(failed["error_message"])
    expect(page.locator("#preview *")).to_have_count(0)
    expect(page.locator("#download")).to_be_hidden()
