"""Reports what a script can observe about how it was started; exits as told by its arguments."""

import json
import os
import sys

import sibling_helper  # a module next to this script: sys.path[0] must be this folder

print(json.dumps({
    "name": __name__,
    "argv": sys.argv[1:],
    "helper": sibling_helper.VALUE,
    "trace_id": os.environ.get("LLMTRACE_TRACE_ID"),
}))
print("to stderr", file=sys.stderr)
mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
if mode == "exit":
    sys.exit(int(sys.argv[2]))
if mode == "raise":
    raise ValueError("boom from the script")
if mode == "interrupt":
    raise KeyboardInterrupt
if mode == "exitmsg":
    sys.exit("fatal: message exit")
