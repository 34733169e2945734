"""docs/client.md's Python examples run as written against a real `transmute serve` (only its address changed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.deploy import REPO
from tests.support.servers import Server

DOC = REPO / "docs" / "client.md"
DOC_SERVER = "http://127.0.0.1:8000"
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
EXPECTED = ["wrote", "400 'width'", "attempt 2", "['done', 'done', 'done']"]
"""What each example prints when it worked, in the order of the page."""


def test_the_page_has_the_examples_this_test_expects():
    assert len(EXAMPLES) == len(EXPECTED)


@pytest.mark.parametrize(("example", "expected"), list(zip(EXAMPLES, EXPECTED, strict=True)),
                         ids=[f"example-{n}" for n in range(1, len(EXAMPLES) + 1)])
def test_each_example_of_docs_client_md_runs(example: str, expected: str, server: Server, clips, tmp_path: Path):
    shutil.copy(clips["video"], tmp_path / "clip.mp4")
    code = example.replace(DOC_SERVER, server.url)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=180,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert expected in done.stdout, done.stdout
