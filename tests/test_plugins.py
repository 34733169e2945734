import json
import shutil

import pytest
from click.testing import CliRunner

from transmute.cli import main
from transmute.core.errors import PluginError, UnknownFormat
from transmute.core.formats import ConversionJob, OutputFormat
from transmute.core.hookspecs import hookimpl
from transmute.core.options import FormatOptions, Speed
from transmute.core.plugins import create_plugin_manager, get_format, output_formats, plugin_manager


class CopyOptions(FormatOptions, kw_only=True):
    """A format with one option of its own and none of the video ones."""

    speed: Speed = 1.0


class CopyFormat(OutputFormat):
    """A throw-away format: copies the input, reports progress, remembers the job it got."""

    name = "copy"
    extension = "bin"
    mime_type = "application/octet-stream"
    description = "The input, unchanged."
    options = CopyOptions
    jobs: list[ConversionJob] = []  # noqa: RUF012

    def convert(self, job: ConversionJob) -> None:
        self.jobs.append(job)
        assert job.work_dir is not None and job.work_dir.is_dir()
        job.progress(50)
        shutil.copyfile(job.input_path, job.output_path)
        job.progress(100)


class CopyPlugin:
    @hookimpl
    def transmute_output_formats(self):
        return [CopyFormat()]


class BrokenPlugin:
    @hookimpl
    def transmute_output_formats(self):
        raise RuntimeError("the broken plugin is broken")


@pytest.fixture
def registered():
    """Register plugin objects on the process-wide manager for one test, then take them away."""
    added = []

    def register(plugin):
        plugin_manager().register(plugin)
        added.append(plugin)
        return plugin

    yield register
    for plugin in added:
        plugin_manager().unregister(plugin)
    CopyFormat.jobs.clear()


def test_a_plugin_registered_from_outside_is_listed_by_transmute_formats(registered):
    registered(CopyPlugin())
    listed = CliRunner().invoke(main, ["formats", "--json"])
    assert listed.exit_code == 0, listed.output
    formats = {item["name"]: item for item in json.loads(listed.output)}
    assert "copy" in formats and set(formats) == set(output_formats())  # the built-ins and the new one
    assert [(item["name"], item["default"], item["allowed"]) for item in formats["copy"]["parameters"]] == [
        ("format", "copy", "the name of an installed format"), ("speed", 1.0, "a number from 0.25 to 4")]
    assert formats["copy"]["mime_type"] == "application/octet-stream"


def test_a_plugin_registered_from_outside_converts_through_transmute_convert(registered, clips, tmp_path):
    registered(CopyPlugin())
    target = tmp_path / "copied.bin"
    done = CliRunner().invoke(main, ["convert", str(clips["small"]), "-o", str(target), "--format", "COPY"])
    assert done.exit_code == 0, done.output
    assert target.read_bytes() == clips["small"].read_bytes()
    (job,) = CopyFormat.jobs
    assert job.media.width == 160 and job.params == CopyOptions(format="copy")
    assert not job.work_dir.exists(), "the temporary work dir must be removed afterwards"


def test_the_plugin_is_gone_once_unregistered(registered):
    plugin = registered(CopyPlugin())
    plugin_manager().unregister(plugin)
    try:
        with pytest.raises(UnknownFormat, match=r"installed formats \([^)]*\bgif\b[^)]*\); got 'copy'") as raised:
            get_format("copy")
        assert "copy," not in str(raised.value) and "copy)" not in str(raised.value)
    finally:
        plugin_manager().register(plugin)


def test_a_plugin_that_fails_shows_one_clear_line(registered):
    registered(BrokenPlugin())
    with pytest.raises(PluginError, match="the broken plugin is broken"):
        output_formats()
    listed = CliRunner().invoke(main, ["formats"])
    assert listed.exit_code == 1
    assert listed.output == ("transmute: error: The transmute plugin 'BrokenPlugin' failed to list its formats "
                             "(RuntimeError: the broken plugin is broken).\n")


def test_pinning_plugins_loads_only_those_named(monkeypatch):
    assert set(output_formats(create_plugin_manager(only="gif"))) == {"gif"}
    assert set(output_formats(create_plugin_manager(only="gif,webp"))) == {"gif", "webp"}
    with pytest.raises(PluginError, match="not installed: nosuchformat"):
        create_plugin_manager(only="gif,nosuchformat")


class TellingFormat(CopyFormat):
    """A throw-away format that tells something of its result in the job's metadata."""

    name = "tell"
    told: object = None

    def convert(self, job: ConversionJob) -> None:
        super().convert(job)
        job.metadata["told"] = self.told


class TellingPlugin:
    @hookimpl
    def transmute_output_formats(self):
        return [TellingFormat()]


@pytest.mark.parametrize(("told", "error"), [
    ({"tiles": [{"time": 0.5, "x": 0}], "ok": True, "none": None}, None),
    (object(), "The tell format returned metadata that is not JSON-ready"),
    ("x" * 70_000, r"The tell format returned 70011 bytes of metadata, more than the 65536 allowed"),
])
def test_what_a_format_tells_of_its_result_must_be_small_json(registered, clips, tmp_path, told, error):
    from transmute.media.conversion import convert_file
    from transmute.settings import LimitsConfig

    registered(TellingPlugin())
    TellingFormat.told = told
    run = lambda: convert_file(clips["small"], tmp_path / "out.bin", FormatOptions(format="tell"),  # noqa: E731
                               limits=LimitsConfig().for_conversion(), work_dir=tmp_path)
    if error is None:
        assert run().metadata == {"told": told}
    else:
        with pytest.raises(PluginError, match=error):
            run()
