"""Chat calls in a loop; after the Nth, optionally kills the process that stores this run's spans
(found by the trace id in its command line). Prints one JSON line: the thread names this process
has, and what os.waitpid(-1, WNOHANG) says (a process with no children of its own: ChildProcessError).

    python helper_gone.py CALLS [KILL_AFTER [die]]

With `die`, the script ends by SIGKILL of its own process, once it has printed.
"""

import json
import os
import signal
import sys
import threading

from langchain_openai import ChatOpenAI

calls = int(sys.argv[1])
kill_after = int(sys.argv[2]) if len(sys.argv) > 2 else -1
llm = ChatOpenAI(model="gpt-4o-mini", max_retries=0)
killed = []
for i in range(calls):
    llm.invoke(f"question {i}")
    if i + 1 == kill_after:
        trace_id = os.environ["LLMTRACE_TRACE_ID"]
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if any(b"llmtrace.store.helper" in a for a in argv) and trace_id.encode() in argv:
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
try:
    waited = repr(os.waitpid(-1, os.WNOHANG))
except ChildProcessError:
    waited = "ChildProcessError"
print(json.dumps({"threads": sorted(t.name for t in threading.enumerate()), "waitpid": waited, "killed": len(killed)}),
      flush=True)
if sys.argv[3:] == ["die"]:
    os.kill(os.getpid(), signal.SIGKILL)
