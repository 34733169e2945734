import json
import re
import subprocess

import click
import pytest
from click.testing import CliRunner

from tests.support.gifs import read_gif
from tests.support.media import make_truncated
from tests.support.servers import TRANSMUTE, Server
from transmute.cli import main
from transmute.core.formats import ConversionJob, OutputFormat
from transmute.core.hookspecs import hookimpl
from transmute.core.plugins import plugin_manager


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TRANSMUTE), *args], capture_output=True, text=True, timeout=120)


def test_the_console_script_converts_with_every_option(clips, tmp_path):
    target = tmp_path / "every option.gif"
    done = run("convert", str(clips["video"]), "-o", str(target), "--format", "gif", "--width", "200",
               "--fps", "12", "--start-time", "0.5", "--end-time", "2.5", "--quality", "high", "--speed", "2",
               "--grayscale", "--reverse", "--boomerang", "--high-quality", "--dither", "floyd_steinberg",
               "--keep-original-size")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"transmute: wrote {target} (") and "Traceback" not in done.stderr
    gif = read_gif(target)
    assert gif.version == b"GIF89a" and gif.loop_count == 0
    assert (gif.width, gif.height) == (320, 240)  # keep_original_size wins over --width
    assert gif.frame_count == 2 * 12 - 1  # 2 s at speed 2 = 1 s of 12 fps, there and back


def test_a_bad_parameter_exits_2_with_one_line_and_no_traceback(clips, tmp_path):
    done = run("convert", str(clips["video"]), "-o", str(tmp_path / "out.gif"), "--fps", "120")
    assert done.returncode == 2
    assert done.stderr == "transmute: error: 'fps' must be an integer from 1 to 50; got '120'.\n"
    assert not (tmp_path / "out.gif").exists()


@pytest.mark.parametrize(("options", "message"), [
    (["--width", "12"], "'width' must be an integer from 16 to 4096; got '12'."),
    (["--quality", "ultra"], "'quality' must be one of low, medium, high; got 'ultra'."),
    (["--dither", "random"], "'dither' must be one of bayer, none,"),
    (["--speed", "10"], "'speed' must be a number from 0.25 to 4; got '10'."),
    (["--start-time", "2", "--end-time", "1"], "'end_time' must be greater than 'start_time' (2); got 1."),
    (["--format", "bmp"], "'format' must be one of the installed formats (apng, gif, "),  # no plugin writes BMP
    (["--colour", "red"], "No such option '--colour'"),
])
def test_each_bad_option_is_one_line_naming_it_and_exits_2(clips, tmp_path, options, message):
    done = CliRunner().invoke(main, ["convert", str(clips["video"]), "-o", str(tmp_path / "o.gif"), *options])
    assert done.exit_code == 2
    assert done.output.startswith("transmute: error: ") and message in done.output
    assert done.output.count("\n") == 1


@pytest.mark.parametrize(("clip", "code", "message"), [
    ("text", 1, "The file is not a video transmute can read (ffmpeg: "),
    ("audio", 1, "The file has no video stream."),
    ("empty", 1, "The file is empty"),
])
def test_an_input_that_is_not_a_video_fails_with_one_line(clips, tmp_path, clip, code, message):
    done = CliRunner().invoke(main, ["convert", str(clips[clip]), "-o", str(tmp_path / "o.gif")])
    assert done.exit_code == code
    assert done.output.startswith("transmute: error: " + message) and done.output.count("\n") == 1


def test_a_folder_given_as_input_is_called_a_folder(tmp_path):
    done = CliRunner().invoke(main, ["convert", str(tmp_path), "-o", str(tmp_path / "o.gif")])
    assert done.exit_code == 2
    assert done.output == f"transmute: error: The input {str(tmp_path)!r} is a folder; give a video file.\n"


def test_an_output_extension_that_is_not_the_formats_is_refused_before_converting(clips, tmp_path):
    target = tmp_path / "x.bmp"  # no format writes BMP
    done = CliRunner().invoke(main, ["convert", str(clips["small"]), "-o", str(target)])
    assert done.exit_code == 2
    assert done.output == (f"transmute: error: The output {str(target)!r} ends in .bmp, but the gif format "
                           "writes .gif files; name it x.gif.\n")
    assert not target.exists()


def test_an_output_extension_of_another_format_names_that_format(clips, tmp_path):
    target = tmp_path / "x.jpg"
    done = CliRunner().invoke(main, ["convert", str(clips["small"]), "-o", str(target)])
    assert done.exit_code == 2
    assert done.output.endswith("name it x.gif, or pass --format jpg.\n")
    assert not target.exists()


@pytest.mark.parametrize("name", ["x.GIF", "x.Gif", "no-extension"])
def test_the_formats_extension_in_any_case_or_none_is_accepted(clips, tmp_path, name):
    done = CliRunner().invoke(main, ["convert", str(clips["small"]), "-o", str(tmp_path / name)])
    assert done.exit_code == 0, done.output
    assert read_gif(tmp_path / name).width == 160


def test_help_shows_what_each_conversion_option_takes():
    shown = CliRunner().invoke(main, ["convert", "--help"], terminal_width=200).output
    assert re.search(r"--width INTEGER RANGE .*\[16<=x<=4096\]", shown), shown
    assert re.search(r"--fps INTEGER RANGE .*\[1<=x<=50\]", shown), shown
    assert re.search(r"--speed FLOAT RANGE .*\[0\.25<=x<=4", shown), shown
    assert "--quality [low|medium|high]" in shown and "--dither [bayer|none|" in shown
    assert "TEXT" not in shown.split("--width", 1)[1].split("--timeout", 1)[0]


@pytest.mark.parametrize("command", ["serve", "api", "worker"])
def test_every_server_command_takes_its_log_level_from_TRANSMUTE_LOG_LEVEL(monkeypatch, command):
    monkeypatch.setenv("TRANSMUTE_LOG_LEVEL", "WARNING")
    server = main.get_command(click.Context(main), command)
    assert server.make_context(command, []).params["log_level"] == "warning"
    monkeypatch.delenv("TRANSMUTE_LOG_LEVEL")
    assert server.make_context(command, []).params["log_level"] == "info"
    assert server.make_context(command, ["--log-level", "debug"]).params["log_level"] == "debug"


def test_serve_with_TRANSMUTE_LOG_LEVEL_warning_writes_no_info_lines(tmp_path):
    server = Server(data_dir=tmp_path / "data", log_path=tmp_path / "serve.log", env={"TRANSMUTE_LOG_LEVEL": "warning"})
    try:
        server.start()
    finally:
        server.kill_group()
    written = server.log(tail=None)
    assert "serving on" not in written and " INFO " not in written and "INFO:" not in written, written


def test_a_missing_input_file_fails_with_one_line(tmp_path):
    done = CliRunner().invoke(main, ["convert", str(tmp_path / "gone.mp4"), "-o", str(tmp_path / "o.gif")])
    assert done.exit_code == 2
    assert done.output == f"transmute: error: The input file {str(tmp_path / 'gone.mp4')!r} does not exist.\n"


def test_a_start_past_the_end_of_the_video_fails_with_one_line(clips, tmp_path):
    done = CliRunner().invoke(main, ["convert", str(clips["video"]), "-o", str(tmp_path / "o.gif"),
                                     "--start-time", "10"])
    assert done.exit_code == 1
    assert "is at or beyond the end of the video (3 s)" in done.output and done.output.count("\n") == 1


@pytest.mark.parametrize(("options", "frames", "seconds"), [
    ([], 15, "1.0"),  # 1 s of 160x120 at the default 15 fps, written by ffmpeg
    (["--high-quality", "--fps", "7", "--speed", "0.8"], 9, "1.3"),  # written by transmute (it tells the summary)
])
def test_convert_writes_a_gif_and_one_summary_line_of_what_the_file_holds_when_not_on_a_terminal(
        clips, tmp_path, options, frames, seconds):
    target = tmp_path / "o.gif"
    done = CliRunner().invoke(main, ["convert", str(clips["small"]), "-o", str(target), *options])
    assert done.exit_code == 0
    gif = read_gif(target)
    assert (gif.width, gif.height, gif.frame_count) == (160, 120, frames)
    assert f"{sum(gif.delays) / 100:.1f}" == seconds
    size = target.stat().st_size
    assert re.fullmatch(rf"transmute: wrote {re.escape(str(target))} \({size / 1024:.1f} KB, 160x120, "
                        rf"{frames} frames, {re.escape(seconds)} s\) in \d+\.\d s\.\n", done.output), done.output


def test_convert_follows_a_symbolic_link_named_on_the_command_line(clips, tmp_path):
    link = tmp_path / "link.mp4"
    link.symlink_to(clips["small"])
    done = CliRunner().invoke(main, ["convert", str(link), "-o", str(tmp_path / "o.gif")])
    assert done.exit_code == 0, done.output
    assert read_gif(tmp_path / "o.gif").width == 160


def test_ctrl_c_during_a_conversion_is_one_line_and_a_non_zero_exit(clips, tmp_path):
    class Interrupted(OutputFormat):
        name, extension, mime_type = "interrupted", "bin", "application/octet-stream"

        def convert(self, job: ConversionJob) -> None:
            raise KeyboardInterrupt

    class Plugin:
        @hookimpl
        def transmute_output_formats(self):
            return [Interrupted()]

    plugin = Plugin()
    plugin_manager().register(plugin)
    try:
        done = CliRunner().invoke(main, ["convert", str(clips["small"]), "-o", str(tmp_path / "o.bin"),
                                         "--format", "interrupted"])
    finally:
        plugin_manager().unregister(plugin)
    assert done.exit_code == 130
    assert done.output == "transmute: error: interrupted.\n"


def test_a_truncated_input_converts_with_a_warning_line_on_stderr(tmp_path):
    target = tmp_path / "out.gif"
    done = run("convert", str(make_truncated(tmp_path)), "-o", str(target), "--fps", "5")
    assert done.returncode == 0, done.stderr
    assert read_gif(target).duration == pytest.approx(1.6, abs=0.3)
    [line] = done.stderr.splitlines()
    assert line.startswith("transmute: warning: The result is 1.") and "instead of the 4.0 s expected" in line


def test_formats_lists_gif_with_its_parameters_and_defaults():
    done = CliRunner().invoke(main, ["formats"])
    assert done.exit_code == 0
    assert "\ngif  (.gif, image/gif)" in "\n" + done.output  # formats in name order
    assert "fps" in done.output and "default 15" in done.output
    listed = json.loads(CliRunner().invoke(main, ["formats", "--json"]).output)
    (gif,) = [item for item in listed if item["name"] == "gif"]
    assert {parameter["name"]: parameter["default"] for parameter in gif["parameters"]}["dither"] == "bayer"


def test_a_conversion_from_the_command_line_loads_none_of_the_servers_code(clips, tmp_path):
    # each command is imported when it runs: converting starts without the gateway's, broker's or checks' code
    shown = subprocess.run(
        [str(TRANSMUTE.parent / "python"), "-c",
         "import sys; from transmute.cli import main; main(sys.argv[1:], standalone_mode=False); "
         "print(sorted(name for name in ('litestar', 'dramatiq', 'sqlalchemy', 'transmute.cli.check', "
         "'transmute.cli.services', 'transmute.cli.submit') if name in sys.modules))",
         "convert", str(clips["small"]), "-o", str(tmp_path / "out.gif")],
        capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[-1] == "[]" and (tmp_path / "out.gif").is_file()
