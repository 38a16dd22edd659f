"""The IPython extension's cost on cells that make no LLM call: a notebook of 50 such cells (a little
pure-Python work each, as a data-cleaning notebook has) run in a fresh kernel with and without
`%load_ext llmtrace`; issue #34's target is at most 5 % longer.

Timed from the client (nbclient), cell 1 sent to cell 50 answered, in a kernel already started and
warmed (kernel start-up and the `%load_ext` cell are outside the timing: they are paid once per
kernel). Kernels with and without the extension alternate, ROUNDS of each; the medians are compared.

    python bench/bench_notebook.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

CELLS = 50
CELL = "rows = [{{'id': i, 'v': (i * {n}) % 97}} for i in range(2000)]\ntotal_{n} = sum(r['v'] for r in rows)\ntotal_{n}"


def _kernelspec() -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    if not KernelSpecManager().find_kernel_specs().get("python3", "").startswith(sys.prefix):
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix"], check=True, capture_output=True)


def one(extension: bool) -> float:
    import nbclient
    import nbformat

    cells = ["%load_ext llmtrace" if extension else "pass", "import json", *(CELL.format(n=n) for n in range(CELLS))]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=600)
    with client.setup_kernel():
        for i in (0, 1):  # set-up: loading the extension (or not), a warm-up cell
            client.execute_cell(nb.cells[i], i)
        t0 = time.perf_counter()
        for i in range(2, len(cells)):
            client.execute_cell(nb.cells[i], i)
        return time.perf_counter() - t0


def per_cell_hooks(n: int = 20_000) -> float:
    """µs the extension's two callbacks take for a cell that makes no call (in this process, its session
    started): the part of the difference above that is llmtrace's, free of the kernel round trip's noise."""
    from types import SimpleNamespace

    from llmtrace.notebook import Extension

    shell = SimpleNamespace(history_manager=SimpleNamespace(input_hist_raw=[""]), user_ns={}, execution_count=1)
    ext = Extension(shell)
    info = SimpleNamespace(silent=False, store_history=True)
    result = SimpleNamespace(error_in_exec=None, error_before_exec=None)
    ext.pre_run_cell(info)
    ext.post_run_cell(result)  # the session starts at the first cell
    t0 = time.perf_counter()
    for _ in range(n):
        ext.pre_run_cell(info)
        ext.post_run_cell(result)
    spent = (time.perf_counter() - t0) / n * 1e6
    ext.stop()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    _kernelspec()
    os.environ["LLMTRACE_HOME"] = tempfile.mkdtemp(prefix="llmtrace-bench-nb-")  # no store of the user's
    times: dict[bool, list[float]] = {False: [], True: []}
    for r in range(args.rounds):
        for extension in ((False, True) if r % 2 == 0 else (True, False)):
            times[extension].append(one(extension))
    plain, traced = statistics.median(times[False]), statistics.median(times[True])
    print(f"{CELLS} cells without an LLM call, median of {args.rounds} kernels each:")
    print(f"  without the extension  {plain * 1000:8.1f} ms  ({plain / CELLS * 1000:.2f} ms a cell)")
    print(f"  with %load_ext llmtrace {traced * 1000:7.1f} ms  ({traced / CELLS * 1000:.2f} ms a cell)")
    print(f"  overhead {100 * (traced / plain - 1):+.1f} % of the medians, "
          f"{100 * (min(times[True]) / min(times[False]) - 1):+.1f} % of the fastest kernels (target: at most +5 %)")
    print(f"  the extension's callbacks: {per_cell_hooks():.1f} µs a cell (in-process, 20,000 cells)")
    print("  every run, ms:", {("with" if k else "without"): [round(t * 1000) for t in v] for k, v in times.items()})


if __name__ == "__main__":
    main()
