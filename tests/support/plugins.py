"""Third-party format plugins, installed the way a user installs one: `pip install` of a package whose
pyproject.toml declares a `transmute.plugins` entry point.

Each goes into a folder of its own (`pip install --target`), which only the processes a test starts see, on
their PYTHONPATH: the tests' own process, and every other test, keep the built-in formats only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "transmute-plugin-thumbs"

BROKEN_PLUGINS: dict[str, str] = {
    "badimport": """
        raise ImportError("this plugin needs libfoo, which is not installed")
    """,
    "badname": """
        from transmute.core.formats import OutputFormat
        from transmute.core.hookspecs import hookimpl

        class BadName(OutputFormat):
            name = "Bad Name!"
            extension = "bin"
            mime_type = "application/octet-stream"

            def convert(self, job):
                pass

        @hookimpl
        def transmute_output_formats():
            return [BadName()]
    """,
    "badoptions": """
        import msgspec

        from transmute.core.formats import OutputFormat
        from transmute.core.hookspecs import hookimpl

        class LooseOptions(msgspec.Struct):
            level: int = 1

        class BadOptions(OutputFormat):
            name = "badoptions"
            extension = "bin"
            mime_type = "application/octet-stream"
            options = LooseOptions

            def convert(self, job):
                pass

        @hookimpl
        def transmute_output_formats():
            return [BadOptions()]
    """,
    "failing": """
        from transmute.core.formats import ConversionJob, OutputFormat
        from transmute.core.hookspecs import hookimpl
        from transmute.core.options import FormatOptions

        class Failing(OutputFormat):
            name = "failing"
            extension = "bin"
            mime_type = "application/octet-stream"
            description = "Test only: its converter has a bug."
            options = FormatOptions

            def convert(self, job: ConversionJob) -> None:
                job.progress(10)
                raise RuntimeError("a bug in the failing plugin")

        @hookimpl
        def transmute_output_formats():
            return [Failing()]
    """,
}
"""Plugins that break in each way a plugin can (module code; each its own distribution and entry point)."""


def pip_install(project: Path, target: Path, build_dir: Path) -> Path:
    """`pip install` the project into the folder `target` (built in a copy: setuptools writes build files
    beside the sources), without build isolation or dependencies: offline, transmute is already here."""
    shutil.copytree(project, build_dir, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(target), str(build_dir)],
                   check=True, capture_output=True)
    return target


def write_plugin_project(folder: Path, name: str, code: str) -> Path:
    """A one-module plugin project: `transmute-plugin-<name>`, module `<name>`, entry point `<name>`."""
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text(textwrap.dedent(code).lstrip())
    (folder / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=77"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "transmute-plugin-{name}"
        version = "0.1"

        [project.entry-points."transmute.plugins"]
        {name} = "{name}"
    """).lstrip())
    return folder


def with_plugins(*sites: Path) -> dict[str, str]:
    """Environment for a transmute process that sees the plugins installed in `sites`."""
    paths = [*map(str, sites), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(path for path in paths if path)}
