"""`llmtrace export` and `import`: traces out as JSON or OTLP, and back in."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from llmtrace.cli.app import SinceOpt, UntilOpt, app
from llmtrace.cli.common import (
    open_cli_store,
    private_file,
    select_traces,
    stderr_console,
)
from llmtrace.errors import UserError


@app.command()
def export(
    traces: Optional[List[str]] = typer.Argument(None, help="Trace ids, prefixes, or last."),
    since: SinceOpt = None,
    until: UntilOpt = None,
    fmt: str = typer.Option("json", "--format", help="json (one document, or an array of them), jsonl (a document per line), or otlp."),
    otlp: Optional[str] = typer.Option(None, "--otlp", help="Send over OTLP/HTTP protobuf to this endpoint (implies --format otlp; default endpoint: OTEL_EXPORTER_OTLP_ENDPOINT)."),
    otlp_header: Optional[List[str]] = typer.Option(None, "--otlp-header", metavar="NAME=VALUE", help="Send this header with the OTLP requests (repeatable; added to OTEL_EXPORTER_OTLP_HEADERS). MLflow needs x-mlflow-experiment-id=ID."),
    project: Optional[str] = typer.Option(None, "--project", help="Project name for OTLP backends (default: each trace's `project` tag, LLMTRACE_PROJECT, or the script's name)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the JSON here instead of stdout."),
) -> None:
    """Export traces as self-contained JSON documents, or send them to an OpenTelemetry collector.

    Example: llmtrace export last -o bug-report.json ; llmtrace export --since 7d --otlp http://localhost:4318
    """
    from llmtrace.export import jsondoc
    from llmtrace.store.queries import get_spans, get_trace, iter_spans

    if otlp:
        fmt = "otlp"
    if fmt not in ("json", "jsonl", "otlp"):
        raise UserError(f"bad --format {fmt!r}: use json, jsonl or otlp")
    if (otlp_header or project) and fmt != "otlp":
        raise UserError("--otlp-header and --project go with an OTLP export (--otlp URL or --format otlp)")
    db = open_cli_store(write=False)
    ids = select_traces(db, traces, since, until)
    found = [get_trace(db, i) for i in ids]  # every trace row first (small): a bad id fails before anything is written
    if fmt == "otlp":
        from llmtrace.export import otlp as otlp_mod

        url = otlp_mod.endpoint(otlp)
        if url is None:
            raise UserError("no OTLP endpoint: pass --otlp URL or set OTEL_EXPORTER_OTLP_ENDPOINT")
        sent_headers = otlp_mod.headers(otlp_header)
        sent = 0
        for start in range(0, len(found), 50):  # a request per 50 traces keeps bodies modest
            chunk = [(t, get_spans(db, t.id, payloads=True)) for t in found[start : start + 50]]
            request = otlp_mod.build_request([(t, s, otlp_mod.ends_of(s)) for t, s in chunk], project)
            otlp_mod.post(url, request, extra_headers=sent_headers)
            sent += sum(len(s) + 1 for _, s in chunk)
        stderr_console().print(f"sent {len(found)} trace{'s' if len(found) != 1 else ''} ({sent:,} spans) to {url}")
        return
    # Spans go out as they are read from the store: a 200,000-span trace is never held whole.
    out = private_file(output) if output else sys.stdout
    try:
        if fmt == "jsonl":
            for t in found:
                jsondoc.write_document(out.write, t, iter_spans(db, t.id, payloads=True))
                out.write("\n")
        elif len(found) == 1:
            jsondoc.write_document(out.write, found[0], iter_spans(db, found[0].id, payloads=True), indent=2)
            out.write("\n")
        else:  # an array of documents, as json.dumps(list, indent=2) lays it out
            out.write("[" if found else "[]\n")
            for i, t in enumerate(found):
                out.write(("," if i else "") + "\n  ")
                jsondoc.write_document(out.write, t, iter_spans(db, t.id, payloads=True), indent=2, level=1)
            if found:
                out.write("\n]\n")
    except BrokenPipeError:  # `llmtrace export … | head`: the reader has what it wanted
        from llmtrace.render.stream import silence_stdout

        silence_stdout()
        return
    finally:
        if output:
            out.close()
    if output:
        stderr_console().print(f"wrote {len(found)} trace{'s' if len(found) != 1 else ''} to {output}")


@app.command("import")
def import_(
    file: str = typer.Argument(..., help="A file written by `llmtrace export` (json or jsonl), or - for stdin."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite traces that are already in the store."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Leave out traces that are already in the store and import the rest."),
) -> None:
    """Load exported traces into this store (for example one attached to a bug report).

    All or nothing: if a trace of the file is already here, none is imported (unless --replace or --skip-existing).

    Example: llmtrace import bug-report.json && llmtrace show last
    """
    from llmtrace.export import jsondoc
    from llmtrace.redact import Redactor

    if replace and skip_existing:
        raise UserError("--replace and --skip-existing go one at a time")
    # The whole file is read and checked before the store is even opened: a bad file writes nothing.
    items = jsondoc.from_documents(_read_documents(file), file)
    ids = [t.id for t, _ in items]
    db = open_cli_store()
    # Every id is checked before anything is written: a file is imported whole, or not at all.
    here = set() if replace else jsondoc.existing_ids(db, ids)
    if here and not skip_existing:
        first = next(i for i in ids if i in here)
        if len(ids) == 1:
            raise UserError(f"trace {first} is already in this store (use --replace to overwrite it)")
        raise UserError(f"{len(here):,} of the {len(ids):,} traces are already in this store, the first {first}: "
                        "nothing imported (--skip-existing imports the others, --replace overwrites them)")
    new = [(t, spans) for t, spans in items if t.id not in here]
    taken = jsondoc.spans_of_other_traces(db, new)
    if taken:
        span_id, other, trace_id = taken
        raise UserError(f"span {span_id} of trace {trace_id} in {file} already belongs to trace {other} in this store: "
                        "nothing imported")
    for trace, spans in new:
        jsondoc.import_trace(db, trace, spans, Redactor.from_environ(), replace=replace)
    from llmtrace.render import fmt

    done = f"imported {fmt.plural(len(new), 'trace')}" + (f" ({new[0][0].id[:8]})" if len(new) == 1 else "")
    stderr_console().print(done + (f", skipped {len(here):,} already here" if here else ""))


def _read_documents(file: str) -> list:
    """The JSON documents of an exported file (one, an array of them, or one a line), or a one-line UserError."""
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {file}: {e.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{file} is not UTF-8 text (byte {e.start})") from None
    if not text.strip():
        raise UserError(f"{file} is empty: no trace to import")
    try:
        try:
            data = json.loads(text)
            return data if isinstance(data, list) else [data]
        except ValueError:
            lines = [line for line in text.splitlines() if line.strip()]
            if len(lines) < 2:
                raise
            return [json.loads(line) for line in lines]
    except ValueError as e:
        raise UserError(f"{file} is not JSON or JSON lines: {e}") from None
    except RecursionError:
        raise UserError(f"{file} is nested too deeply to be a trace document") from None
