"""The pytest plugin (`pytest --llmtrace`): each test a trace, its LLM answers recorded once into reviewable
files beside the tests and replayed offline after that.

`plugin.py` is what pytest loads through the `pytest11` entry point in every run: options, the marker and
the `llmtrace` fixture, nothing heavy. `suite.py` runs the session when `--llmtrace` is given;
the recorded answer files are read and written by `capture/answer_files.py` (a replay source, as
`capture/replay.py` is for `llmtrace replay`), which child processes of a test use too.
"""
