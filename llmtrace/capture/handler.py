"""LangChain callback handler that turns runs into Spans (chain, llm, tool, retriever)."""

from __future__ import annotations

import logging
import sys
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from llmtrace.errors import BudgetExceeded

from llmtrace.capture import context
from llmtrace.capture.serialize import graph_resume, message_dict, parse_json_maybe, to_jsonable
from llmtrace.model import Span, SpanKind
from llmtrace.clock import now_us

# The kinds as the plain strings spans hold (an Enum's .value is a descriptor call).
_CHAIN, _LLM, _TOOL, _RETRIEVER = (k.value for k in (SpanKind.CHAIN, SpanKind.LLM, SpanKind.TOOL, SpanKind.RETRIEVER))

_PARAM_KEYS = ("model", "model_name", "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed",
               "n", "stream", "reasoning_effort", "response_format", "tool_choice", "parallel_tool_calls")


def _name(serialized: dict[str, Any] | None, kwargs: dict[str, Any], default: str) -> str:
    if kwargs.get("name"):
        return str(kwargs["name"])
    if serialized:
        if serialized.get("name"):
            return str(serialized["name"])
        ident = serialized.get("id")
        if isinstance(ident, list) and ident:
            return str(ident[-1])
    return default


class _NullRecorder:
    """Stands in when nothing is recording: every span start and end is dropped."""

    def start_span(self, **kwargs: Any) -> Span:
        return Span(id=str(kwargs.get("span_id")), trace_id="", parent_id=None, kind="", name="", start_us=0)

    def get_open(self, span_id: str) -> None:
        return None

    def end_span(self, span: Span, **kwargs: Any) -> None:
        pass


_NULL: Any = _NullRecorder()


# UUID → str is slow (~9,000 instructions); each run id is needed as text at its start, its end and
# as a parent, so the text is kept while the run is open. Dict operations are atomic across threads.
# Keyed by the UUID's integer: a UUID's hash and equality are Python methods (~2,000 instructions a
# look-up), an int's are not.
_TEXT_IDS: dict[Any, str] = {}


_RETRIEVER_TOKENS: dict[Any, Any] = {}


def _remember(run_id: UUID) -> str:
    if run_id.__class__ is UUID:
        h = "%032x" % run_id.int  # str(UUID), less its method calls
        text = _TEXT_IDS[run_id.int] = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    else:
        text = _TEXT_IDS[run_id] = str(run_id)
    return text


def _sid(run_id: UUID | str | None) -> str | None:
    if run_id is None:
        return None
    text = _TEXT_IDS.get(run_id.int if run_id.__class__ is UUID else run_id)
    return text if text is not None else str(run_id)


def _forget(run_id: UUID | str) -> str:
    """The run's id as text, no longer kept (its run has ended)."""
    text = _TEXT_IDS.pop(run_id.int if run_id.__class__ is UUID else run_id, None)
    return text if text is not None else str(run_id)


def _not_a_refusal(record: logging.LogRecord) -> bool:
    """LangChain logs a warning for every exception a callback raises: a budget refusal is not one (the
    script gets it as BudgetExceeded, as under the wire capture)."""
    args = record.args if isinstance(record.args, tuple) else ()
    return not (len(args) == 3 and args[0] == "TraceHandler" and str(args[2]).startswith("BudgetExceeded("))


logging.getLogger("langchain_core.callbacks.manager").addFilter(_not_a_refusal)


class TraceHandler(BaseCallbackHandler):
    """Called inline (also in async runs) so span starts see the caller's context."""

    run_inline = True

    @property
    def raise_error(self) -> bool:  # type: ignore[override]
        # LangChain asks while handling a callback's exception: only a budget refusal reaches the caller.
        return isinstance(sys.exc_info()[1], BudgetExceeded)

    @property
    def recorder(self) -> Any:
        # Looked up per call: one handler is registered per process, the recorder can change.
        return context.recorder or _NULL


    # -- helpers --------------------------------------------------------------------------------
    def _start(self, kind: str, run_id: UUID, parent_run_id: UUID | None, name: str, inputs: Any,
               tags: list[str] | None, metadata: dict[str, Any] | None, model_requested: str | None = None,
               provider: str | None = None) -> Span:
        return self.recorder.start_span(
            span_id=_remember(run_id), kind=kind, name=name,
            parent_id=_sid(parent_run_id) or context.carried.get() or context.scope.get(), inputs=inputs,
            tags=list(tags or []), metadata=dict(metadata or {}), model_requested=model_requested, provider=provider,
        )

    def _end(self, run_id: UUID, outputs: Any = None, error: BaseException | None = None) -> Span | None:
        recorder = self.recorder
        span = recorder.get_open(_forget(run_id))
        if span is None:
            return None
        if outputs is not None:
            span.outputs = outputs
        if isinstance(error, GeneratorExit):
            # A stream the caller dropped half-read, closed by the garbage collector (maybe in the middle
            # of the caller's own work, such as an ast.parse): cut short, not failed, and nothing heavy
            # such as formatting a traceback here.
            span.metadata["cut_short"] = True
            error = None
        recorder.end_span(span, error=error)
        return span

    # -- chains ---------------------------------------------------------------------------------
    def on_chain_start(self, serialized: dict[str, Any], inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                       tags: list[str] | None = None, metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        resume = graph_resume(inputs)  # a LangGraph resume: labelled as one
        if resume is not None:
            metadata = {**(metadata or {}), "llmtrace_resume": True}
        self._start(_CHAIN, run_id, parent_run_id, _name(serialized, kwargs, "chain"), resume or to_jsonable(inputs), tags,
                    metadata)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if kwargs.get("inputs") is not None:  # streamed runs only know their input at the end
            span = self.recorder.get_open(_sid(run_id))
            if span is not None:
                span.inputs = to_jsonable(kwargs["inputs"])
        self._end(run_id, to_jsonable(outputs))

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error=error)

    # -- models ---------------------------------------------------------------------------------
    def _llm_start(self, serialized: dict[str, Any], inputs: Any, run_id: UUID, parent_run_id: UUID | None,
                   tags: list[str] | None, metadata: dict[str, Any] | None, kwargs: dict[str, Any]) -> None:
        meta = metadata or {}  # _start stores a copy
        params = kwargs.get("invocation_params") or {}
        requested = meta.get("ls_model_name") or params.get("model") or params.get("model_name")
        span = self._start(
            _LLM, run_id, parent_run_id, _name(serialized, kwargs, "llm"), inputs, tags, meta,
            model_requested=requested, provider=meta.get("ls_provider"),
        )
        span.metadata["params"] = {k: to_jsonable(params[k]) for k in _PARAM_KEYS if k in params}
        if params.get("tools"):
            span.metadata["tools"] = [
                (t.get("function") or {}).get("name") or t.get("name") for t in params["tools"] if isinstance(t, dict)
            ]
        context.expect_call(span.id)
        budget = context.settings.budget
        if budget is not None:
            try:
                budget.admit_run(span)
            except BudgetExceeded as e:  # not sent: the refused call is in the trace, the error at the call site
                self._end(run_id, error=e)
                raise

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[Any]], *, run_id: UUID,
                            parent_run_id: UUID | None = None, tags: list[str] | None = None,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        inputs = {"messages": [message_dict(m) for m in (messages[0] if messages else [])]}
        self._llm_start(serialized, inputs, run_id, parent_run_id, tags, metadata, kwargs)

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID,
                     parent_run_id: UUID | None = None, tags: list[str] | None = None,
                     metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._llm_start(serialized, {"prompts": list(prompts)}, run_id, parent_run_id, tags, metadata, kwargs)

    def on_llm_new_token(self, token: str, *, run_id: UUID, **kwargs: Any) -> None:
        span = self.recorder.get_open(_sid(run_id))
        if span is not None and span.first_token_us is None:
            span.first_token_us = now_us()
            span.streamed = True

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        recorder = self.recorder
        span = recorder.get_open(_forget(run_id))
        if span is None:
            return
        try:
            self._fill_llm(span, response)
        finally:
            recorder.end_span(span)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error=error)

    @staticmethod
    def _fill_llm(span: Span, response: Any) -> None:
        generations = getattr(response, "generations", None) or [[]]
        gen = generations[0][0] if generations and generations[0] else None
        msg = getattr(gen, "message", None)
        llm_output = getattr(response, "llm_output", None) or {}
        if msg is not None:
            out = message_dict(msg)
            span.outputs = {k: v for k, v in out.items() if k != "role"}
            content = span.outputs.get("content")
            if isinstance(content, list):  # content blocks (Responses API, other providers): show their text
                texts = [b.get("text") for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)]
                span.outputs["content"] = "".join(texts) or None
                if any(not (isinstance(b, dict) and b.get("type") in ("text", "output_text")) for b in content):
                    span.outputs["blocks"] = content
            meta = getattr(msg, "response_metadata", None) or {}
            span.model = span.model or meta.get("model_name") or meta.get("model")
            span.finish_reason = span.finish_reason or meta.get("finish_reason")
            span.tool_calls = span.tool_calls or out.get("tool_calls")
        elif gen is not None:
            span.outputs = {"text": getattr(gen, "text", None)}
        gen_info = getattr(gen, "generation_info", None) or {}
        span.finish_reason = span.finish_reason or gen_info.get("finish_reason")
        span.model = span.model or llm_output.get("model_name")
        if span.request is not None and span.input_tokens is not None:
            return  # the wire capture already has the provider's own usage numbers
        usage = getattr(msg, "usage_metadata", None)
        if usage:
            span.input_tokens = usage.get("input_tokens")
            span.output_tokens = usage.get("output_tokens")
            span.cached_tokens = (usage.get("input_token_details") or {}).get("cache_read")
            span.reasoning_tokens = (usage.get("output_token_details") or {}).get("reasoning")
        elif llm_output.get("token_usage"):
            tu = llm_output["token_usage"]
            span.input_tokens = tu.get("prompt_tokens")
            span.output_tokens = tu.get("completion_tokens")

    # -- tools and retrievers ------------------------------------------------------------------
    def on_tool_start(self, serialized: dict[str, Any], input_str: str, *, run_id: UUID, parent_run_id: UUID | None = None,
                      tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
                      inputs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        args = to_jsonable(inputs) if inputs is not None else parse_json_maybe(input_str)
        span = self._start(_TOOL, run_id, parent_run_id, _name(serialized, kwargs, "tool"), args, tags, metadata)
        if kwargs.get("tool_call_id"):
            span.metadata["tool_call_id"] = kwargs["tool_call_id"]
        description = (serialized or {}).get("description")
        if isinstance(description, str) and description:
            span.metadata["description"] = description[:2000]

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        content = getattr(output, "content", output) if type(output).__name__ == "ToolMessage" else output
        self._end(run_id, to_jsonable(content))

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error=error)

    def on_retriever_start(self, serialized: dict[str, Any], query: str, *, run_id: UUID,
                           parent_run_id: UUID | None = None, tags: list[str] | None = None,
                           metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        span = self._start(_RETRIEVER, run_id, parent_run_id, _name(serialized, kwargs, "retriever"), {"query": query},
                           tags, metadata)
        _RETRIEVER_TOKENS[run_id] = context.enter_retriever(span.id, _sid(parent_run_id))

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        context.leave_retriever(_RETRIEVER_TOKENS.pop(run_id, None))
        self._end(run_id, to_jsonable(documents))

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        context.leave_retriever(_RETRIEVER_TOKENS.pop(run_id, None))
        self._end(run_id, error=error)
