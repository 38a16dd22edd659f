"""Recorded answers as files a reviewer can read: one JSON file per test, in a folder per test module.

    tests/recorded_answers/test_agent/test_chain.json

A file holds the test's LLM and embedding calls: each request body as it was sent and its answer (a
whole body as JSON, a stream as its list of server-sent events), sorted by request so that recording the
same answers again changes no byte, with secrets replaced (llmtrace.redact). Replay matches a request the
way the response cache does (capture/lookup.py, store/cache.py `request_key`): the n-th identical
request of a test gets the n-th answer recorded for it. A request with no recorded answer, where nothing
may be sent, fails at its call site with the nearest recorded request and a diff of the two.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

from llmtrace.errors import NoRecordedAnswer
from llmtrace.store.cache import request_key

FORMAT = 1
FOLDER = "recorded_answers"
MODES = ("once", "none", "new_episodes", "all")
NO_KEY = "llmtrace-replay-no-key"  # the API key the clients get in a replay with none set
_VOLATILE = ("id", "created", "created_at", "system_fingerprint")


def _no_key(endpoint: str) -> str | None:
    """The key variable a live call of this endpoint would need, when it holds only the replay placeholder."""
    var = "ANTHROPIC_API_KEY" if endpoint.startswith("anthropic") else "OPENAI_API_KEY"
    return var if os.environ.get(var) == NO_KEY else None


def answers_path(test_file: Path, test_name: str) -> Path:
    """Where a test's answers live: beside its module, in recorded_answers/<module>/<test>.json."""
    safe = re.sub(r"[^A-Za-z0-9_.=,+-]+", "_", test_name).strip("._") or "test"
    return test_file.parent / FOLDER / test_file.stem / (safe[:150] + ".json")


# -- an answer as the file keeps it -----------------------------------------------------------------
def _event(raw: bytes) -> dict[str, Any]:
    text = raw.decode("utf-8", "replace").strip("\r\n")
    name, data, other = None, [], False
    for line in text.splitlines():
        if line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.strip():
            other = True
    if other or not data:
        return {"raw": text}
    joined = "\n".join(data)
    try:
        value: Any = json.loads(joined)
    except ValueError:
        value = joined
    return {"event": name, "data": value} if name is not None else {"data": value}


def to_file(status: int, parts: list[bytes], sse: bool) -> dict[str, Any]:
    """A live answer (status, body parts, whether a stream of events) as the file keeps it."""
    if sse:
        events = [_event(p) for p in parts if p.strip()]
        return {"status": status, "events": events}
    body = b"".join(parts).decode("utf-8", "replace")
    try:
        return {"status": status, "body": json.loads(body)}
    except ValueError:
        return {"status": status, "text": body}


def _sse(event: dict[str, Any]) -> bytes:
    if "raw" in event:
        return str(event["raw"]).encode() + b"\n\n"
    data = event.get("data")
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event['event']}\n" if event.get("event") is not None else ""
    return f"{head}data: {text}\n\n".encode()


def to_entry(answer: dict[str, Any]) -> dict[str, Any]:
    """A file's answer as a cache entry (status, headers, parts, sse) that capture/answers.py hands back."""
    status = int(answer.get("status", 200))
    if "events" in answer:
        return {"status": status, "headers": [["content-type", "text/event-stream"]],
                "parts": [_sse(e) for e in answer["events"] if isinstance(e, dict)], "sse": True}
    if "body" in answer:
        body = json.dumps(answer["body"], ensure_ascii=False).encode()
        return {"status": status, "headers": [["content-type", "application/json"]], "parts": [body], "sse": False}
    return {"status": status, "headers": [["content-type", "text/plain"]], "parts": [str(answer.get("text", "")).encode()],
            "sse": False}


def _steady(answer: Any) -> Any:
    """An answer without what changes on every call (the response's own id, timestamps, fingerprint; not the
    ids inside it, such as tool calls', which later requests quote): two answers equal this way are the
    same answer, and re-recording keeps the one on file."""

    def top(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out = {k: v for k, v in value.items() if k not in _VOLATILE}
        if isinstance(out.get("response"), dict):  # Responses API stream events carry the response
            out["response"] = {k: v for k, v in out["response"].items() if k not in _VOLATILE}
        return out

    if not isinstance(answer, dict):
        return answer
    out = dict(answer)
    if "body" in out:
        out["body"] = top(out["body"])
    if isinstance(out.get("events"), list):
        out["events"] = [{**e, "data": top(e.get("data"))} if isinstance(e, dict) else e for e in out["events"]]
    return out


def _text(body: Any) -> str:
    return json.dumps(body, sort_keys=True, ensure_ascii=False, indent=1)


def _json_diff(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    out = list(difflib.unified_diff(_text(expected).splitlines(), _text(actual).splitlines(), n=2, lineterm=""))[2:]
    return out[:60] + ([f"… ({len(out) - 60} more lines)"] if len(out) > 60 else [])


# -- one test's file --------------------------------------------------------------------------------
class TestAnswers:
    """One test's recorded answers and what its mode lets a miss do."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, path: Path, mode: str, nodeid: str, neighbours: Any = None, owner: int | None = None,
                 handover: Path | None = None):
        self.path, self.mode, self.nodeid = path, mode, nodeid
        # A child process of the test (forked, or started with the test's answers in its environment) hands
        # what it records and refuses to the test's process through a file of its own in `handover`.
        self.owner = owner or os.getpid()
        self.handover = handover
        self.neighbours = neighbours  # () -> other tests' recorded calls, for the nearest request of a new test
        self.calls: list[dict[str, Any]] = []
        self.old: list[dict[str, Any]] = []  # with `all`: what the file held, to keep answers that did not change
        self.exists = False
        self.problem: str | None = None
        self._keys: list[str] = []
        self._used: list[bool] = []
        self._loaded = False  # read at the test's first call: a test that makes none costs no file look-up
        self.recorded: list[dict[str, Any]] = []
        self.replayed = 0
        self.misses: list[str] = []  # the reports of requests refused
        self.written = False  # the file was (re)written at the test's end
        self._lock = threading.Lock()

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        path = self.path
        self.exists = path.is_file()
        if not self.exists:
            return
        try:
            calls = json.loads(path.read_text(encoding="utf-8")).get("calls", [])
        except (OSError, ValueError, AttributeError) as e:
            if self.mode != "all":
                self.problem = f"cannot read {path}: {e}"
            return
        calls = [c for c in calls if isinstance(c, dict) and isinstance(c.get("request"), dict)]
        if self.mode == "all":
            self.old = calls
            return
        self.calls = calls
        self._keys = [self._key(c["endpoint"] if isinstance(c.get("endpoint"), str) else "", c["request"]) for c in calls]
        self._used = [False] * len(calls)

    @staticmethod
    def _key(endpoint: str, body: dict[str, Any]) -> str:
        return endpoint + ":" + request_key(body, "")

    @property
    def may_send(self) -> bool:
        """Whether a request with no recorded answer goes to the provider (and is recorded)."""
        return self.mode in ("all", "new_episodes") or (self.mode == "once" and not self.exists)

    def answer(self, kind: str, name: str, body: dict[str, Any]) -> Any:
        """The replay source's answer (capture/lookup.py): an Answer, an exception to raise at the call
        site, or None to send the request (recorded when its answer comes)."""
        from llmtrace.capture.replay import Answer

        with self._lock:
            self._load()
            if self.mode != "all":
                key = self._key(name, body)
                i = next((i for i, k in enumerate(self._keys) if k == key and not self._used[i]), None)
                if i is not None:
                    self._used[i] = True
                    self.replayed += 1
                    request = self.calls[i]["request"]
                    options = request.get("stream_options")
                    asked = isinstance(options, dict) and bool(options.get("include_usage"))
                    return Answer(to_entry(self.calls[i].get("response") or {}), [], asked)
            if self.may_send:
                if _no_key(name):
                    report = (f"no recorded answer for this {name} request, and no API key to record it with "
                              f"(set {_no_key(name)}, or replay with recorded answers); nothing was sent")
                    self._missed(report)
                    return NoRecordedAnswer(report)
                return None
            report = self._report(name, body)
            self._missed(report)
            return NoRecordedAnswer(report)

    def _missed(self, report: str) -> None:
        self.misses.append(report)
        self._hand_over()

    def _report(self, name: str, body: dict[str, Any]) -> str:
        why = (f"--llmtrace-record {self.mode}" if self.mode == "none"
               else f"--llmtrace-record once and {self.path.name} exists (re-record with new_episodes or all)")
        head = f"no recorded answer for this {name} request ({why}); nothing was sent"
        if self.problem:
            return f"{head}\n{self.problem}"
        candidates = [c for c, used in zip(self.calls, self._used) if not used and c.get("endpoint") == name]
        where = "this test's"
        if not candidates:
            candidates = [c for c in self.calls if c.get("endpoint") == name]
        if not candidates and self.neighbours is not None:
            candidates, where = [c for c in self.neighbours() if c.get("endpoint") == name], "another test's"
        if not candidates:
            return f"{head}\n(no recorded {name} request to compare with: record with --llmtrace-record once or new_episodes)"
        sent = _text(body)
        nearest = max(candidates, key=lambda c: difflib.SequenceMatcher(None, _text(c["request"]), sent).quick_ratio())
        from llmtrace.capture.replay import request_diff

        lines = request_diff(nearest["request"], body, name)
        if lines[0].startswith("(the bodies differ"):  # in a field the sections leave out (a tool call's id …)
            lines = _json_diff(nearest["request"], body)
        return "\n".join([head, f"nearest recorded request ({where}, in {nearest.get('_file', self.path.name)}), "
                                 "- recorded, + sent:", *[f"  {line}" for line in lines]])

    def record(self, name: str, body: dict[str, Any], status: int, parts: list[bytes], sse: bool) -> None:
        """A live answer that came back whole and successful: kept for the file."""
        entry = {"endpoint": name, "request": body, "response": to_file(status, parts, sse)}
        with self._lock:
            self.recorded.append(entry)
            self._hand_over()

    # -- child processes ------------------------------------------------------------------------------
    def _hand_over(self) -> None:
        """In a child process of the test: all it recorded and refused so far, into its handover file
        (rewritten whole each time: a worker that ends with os._exit runs no exit handler)."""
        if os.getpid() == self.owner or self.handover is None:
            return
        from llmtrace.redact import Redactor

        redactor = Redactor.from_environ()
        doc = {"recorded": [redactor.obj(c) for c in self.recorded], "misses": self.misses}
        try:
            write_private(self.handover / f"answers-{self.trace_id}-{os.getpid()}.json",
                          redactor.text(json.dumps(doc, ensure_ascii=False)))
        except OSError:
            pass

    trace_id = ""  # the test's trace id, which names the handover files

    def take_handovers(self) -> None:
        """In the test's process, at its end: what its child processes recorded and refused."""
        if self.handover is None:
            return
        try:
            names = [n for n in os.listdir(self.handover) if n.startswith(f"answers-{self.trace_id}-")]
        except OSError:
            return
        for name in sorted(names):
            path = self.handover / name
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                self.recorded += [c for c in doc.get("recorded", []) if isinstance(c, dict)]
                self.misses += [str(m) for m in doc.get("misses", [])]
            except (OSError, ValueError, AttributeError):
                pass
            try:
                path.unlink()
            except OSError:
                pass

    @classmethod
    def for_child(cls, spec: dict[str, Any]) -> "TestAnswers":
        """In a child process of a test: its answers (`spec`: path, mode, nodeid, owner, handover, trace_id)."""
        answers = cls(Path(spec["path"]), spec["mode"], spec["nodeid"], owner=int(spec["owner"]),
                      handover=Path(spec["handover"]) if spec.get("handover") else None)
        answers.trace_id = spec.get("trace_id") or ""
        return answers

    # -- writing --------------------------------------------------------------------------------------
    def finish(self, redactor: Any) -> bool:
        """Write the file when something was recorded; returns whether its bytes changed."""
        if not self.recorded:
            return False
        self._load()
        if self.mode == "all":
            calls = [self._kept(c) for c in self.recorded]
        else:
            calls = self.calls + self.recorded
        text = render(self.nodeid, calls, redactor)
        try:
            if self.path.read_text(encoding="utf-8") == text:
                return False
        except OSError:
            pass
        write_private(self.path, text)
        return True

    def _kept(self, call: dict[str, Any]) -> dict[str, Any]:
        """With `all`: the answer on file for this request when the new one is the same answer."""
        for old in self.old:
            if (isinstance(old, dict) and old.get("endpoint") == call["endpoint"]
                    and old.get("request") == json.loads(json.dumps(call["request"]))
                    and _steady(old.get("response")) == _steady(json.loads(json.dumps(call["response"])))):
                self.old.remove(old)
                return old
        return call


def render(nodeid: str, calls: list[dict[str, Any]], redactor: Any) -> str:
    """The file's text: calls sorted by endpoint and request (a stable order, whatever order concurrent
    calls finished in), keys sorted, secrets replaced."""
    clean = [{k: c[k] for k in ("endpoint", "request", "response") if k in c} for c in calls]
    if redactor is not None:
        clean = [redactor.obj(c) for c in clean]
    clean = [json.loads(json.dumps(c, sort_keys=True)) for c in clean]  # every object's keys in order
    clean.sort(key=lambda c: (str(c.get("endpoint")), json.dumps(c.get("request"), sort_keys=True)))
    calls = [{k: c[k] for k in ("endpoint", "request", "response") if k in c} for c in clean]
    doc = {"llmtrace_answers": FORMAT, "test": nodeid, "calls": calls}
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    return redactor.text(text) if redactor is not None else text


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` whole (a temporary file renamed over it), owner-only: it holds prompts."""
    for folder in reversed([path.parent, *[p for p in path.parent.parents][:2]]):
        if not folder.exists():
            folder.mkdir(mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def recorded_calls(folder: Path) -> list[dict[str, Any]]:
    """The calls recorded for other tests, to find the nearest request of a test with no answer for it:
    those of its module's folder, else those of every module's folder beside it."""
    out: list[dict[str, Any]] = []
    for pattern, root in (("*.json", folder), ("*/*.json", folder.parent)):
        if not root.is_dir():
            continue
        for f in sorted(root.glob(pattern)):
            try:
                calls = json.loads(f.read_text(encoding="utf-8")).get("calls", [])
            except (OSError, ValueError, AttributeError):
                continue
            name = str(f.relative_to(folder.parent))
            out += [{**c, "_file": name} for c in calls if isinstance(c, dict) and isinstance(c.get("request"), dict)]
        if out:
            break
    return out


class Switch:
    """The replay source the session's capture settings hold (capture/lookup.py asks it for every call):
    the current test's answers. A call made outside any test (a session fixture) goes live, unrecorded,
    except where nothing may be sent."""

    def __init__(self, mode: str):
        self.mode = mode
        self.current: TestAnswers | None = None
        self.outside_misses: list[str] = []

    def answer(self, kind: str, name: str, body: dict[str, Any]) -> Any:
        current = self.current
        if current is not None:
            return current.answer(kind, name, body)
        if self.mode == "none":
            report = f"no recorded answer for this {name} request made outside a test (--llmtrace-record none); nothing was sent"
            self.outside_misses.append(report)
            return NoRecordedAnswer(report)
        return None

    def record(self, name: str, body: dict[str, Any], status: int, parts: list[bytes], sse: bool) -> None:
        current = self.current
        if current is not None:
            current.record(name, body, status, parts, sse)
