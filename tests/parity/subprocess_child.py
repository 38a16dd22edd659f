"""A script that runs a sibling worker script with subprocess.run([sys.executable, ...])."""

import subprocess
import sys
from pathlib import Path

from langchain_openai import ChatOpenAI

print("parent: starting the worker", flush=True)
worker = Path(__file__).with_name("subprocess_child_worker.py")
done = subprocess.run([sys.executable, str(worker), "alpha", "beta"])
print("parent: worker exited with", done.returncode)
answer = ChatOpenAI(model="gpt-4o-mini", temperature=0).invoke("parent: summarize the worker's answers")
print("parent:", answer.content)
