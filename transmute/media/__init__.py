"""Probing and running ffmpeg (ffmpeg-python builds the graphs), bounded, cancellable, reporting progress.

Only local files, and only real video containers (inputs.py): a path containing "://" or "-" is refused, the
input must be one regular file, opened as `file:<absolute path>` with `-protocol_whitelist file` and
`-format_whitelist` ALLOWED_DEMUXERS, so a playlist or list of files is refused before its demuxer opens anything.
Sources and conversions are bounded by the job's ConversionLimits (limits.py): picture size, duration, output
frames, the memory reverse and boomerang buffer, the pixels decoded; decoding itself too, by the decoder's
`max_pixels` and an address-space ceiling on every child (process.py), a run that meets either being stopped
with a message naming the setting (verdict.py). ffmpeg and ffprobe run in their own session and die with the
thread that started them. Every failure is a MediaError whose message is one sentence a person can act on
(explain.py).

    probe.py          probe: a file's MediaInfo
    run.py            run_ffmpeg / FfmpegRun: one ffmpeg run with progress, cancel, timeout
    geometry.py       output_size;  filters.py: decoder_options, deinterlaced, to_gray
    user_warnings.py  collecting_warnings, warn: what a conversion survived, for the user
    conversion.py     convert_file: one local file, as the CLI and the worker convert it
"""
