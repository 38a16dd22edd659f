"""A command-line tool: argparse options, a question read from stdin, and a non-zero exit status."""

import argparse
import sys

from langchain_openai import ChatOpenAI

parser = argparse.ArgumentParser(description="Ask the model a question several times.")
parser.add_argument("--n", type=int, default=1, help="how many times to ask")
parser.add_argument("--name", default="anonymous", help="who is asking")
args = parser.parse_args()

question = sys.stdin.read().strip()
print(f"{args.name} asks {args.n}x: {question!r}")
llm = ChatOpenAI(model="gpt-4o-mini", temperature=0)
for i in range(1, args.n + 1):
    reply = llm.invoke(f"[{i}/{args.n}] {args.name} asks: {question}")
    print(f"{i}: {reply.content}")
print(f"asked {args.n} times; exiting with status 3", file=sys.stderr)
sys.exit(3)
