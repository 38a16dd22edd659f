"""Chat calls in a loop; after the Nth, optionally waits for the process that stores this run's spans
(found by the trace id in its command line; it starts once the run has spooled enough) and kills it.
Prints one JSON line: the thread names this process has, what os.waitpid(-1, WNOHANG) says (a process
with no children of its own: ChildProcessError), how many helpers it killed and saw.

    python helper_gone.py CALLS [KILL_AFTER [wait] [die]]

With `die`, the script ends by SIGKILL of its own process, once it has printed. With `wait`, it waits
for the helper after its calls (a short run starts one half a second after its first span) and
leaves it be.
"""

import json
import os
import signal
import sys
import threading
import time

from langchain_openai import ChatOpenAI

calls = int(sys.argv[1])
kill_after = int(sys.argv[2]) if len(sys.argv) > 2 else -1
llm = ChatOpenAI(model="gpt-4o-mini", max_retries=0)
killed, seen = [], []


def helpers() -> list[int]:
    trace_id = os.environ["LLMTRACE_TRACE_ID"].encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(b"llmtrace.store.helper" in a for a in argv) and trace_id in argv:
            found.append(int(pid))
    return found


def children() -> list[str]:
    """This process's children (Linux: /proc/self/task/*/children)."""
    out = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as f:
                out += f.read().split()
        except OSError:
            pass
    return out


def wait_for_helper() -> list[int]:
    deadline = time.monotonic() + 60
    while not (found := helpers()) and time.monotonic() < deadline:
        time.sleep(0.02)
    # The helper is seen as soon as the short-lived shell that starts it has run it; that shell (our child
    # for a moment) may not have exited and been reaped yet. A child left for good still shows after this.
    settle = time.monotonic() + 10
    while children() and time.monotonic() < settle:
        time.sleep(0.02)
    return found


for i in range(calls):
    llm.invoke(f"question {i}")
    if i + 1 == kill_after:
        for pid in wait_for_helper():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
if "wait" in sys.argv[3:]:
    seen = wait_for_helper()
try:
    waited = repr(os.waitpid(-1, os.WNOHANG))
except ChildProcessError:
    waited = "ChildProcessError"
print(json.dumps({"threads": sorted(t.name for t in threading.enumerate()), "waitpid": waited, "killed": len(killed),
                  "seen": len(seen)}),
      flush=True)
if "die" in sys.argv[3:]:
    os.kill(os.getpid(), signal.SIGKILL)
