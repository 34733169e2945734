"""A throw-away format plugin for the distributed tests: converting to `crash` kills the worker process.

It is an ordinary plugin, found the ordinary way: the test puts this folder on the processes' PYTHONPATH,
where `transmute_crash_plugin-0.1.dist-info/entry_points.txt` declares it in the `transmute.plugins`
entry-point group, exactly as an installed distribution would. Nothing in transmute knows about it.
"""

from __future__ import annotations

import os
import signal

from transmute.core.formats import ConversionJob, OutputFormat
from transmute.core.hookspecs import hookimpl


class CrashFormat(OutputFormat):
    name = "crash"
    extension = "gif"
    mime_type = "image/gif"
    description = "Test only: kills the process converting to it (as an out-of-memory kill would)."

    def convert(self, job: ConversionJob) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


@hookimpl
def transmute_output_formats() -> list[OutputFormat]:
    return [CrashFormat()]
