"""Run by the MLflow server's interpreter: print an experiment's traces as MLflow's own client sees them.

usage: python read_mlflow.py TRACKING_URL EXPERIMENT_ID  →  JSON list of traces on stdout
"""

import json
import sys

import mlflow


def main() -> None:
    url, experiment_id = sys.argv[1], sys.argv[2]
    mlflow.set_tracking_uri(url)
    out = []
    for trace in mlflow.search_traces(locations=[experiment_id], return_type="list", max_results=500):
        info = trace.info
        spans = []
        for span in trace.data.spans:
            spans.append({
                "name": span.name, "span_id": span.span_id, "parent_id": span.parent_id,
                "span_type": span.span_type, "status": str(span.status.status_code),
                "inputs": span.inputs, "outputs": span.outputs,
                "attributes": span.attributes,
                "events": [{"name": e.name, "attributes": e.attributes} for e in span.events],
            })
        out.append({
            "trace_id": info.trace_id, "state": str(info.state), "request_preview": info.request_preview,
            "response_preview": info.response_preview, "token_usage": info.token_usage,
            "trace_metadata": dict(info.trace_metadata or {}), "spans": spans,
        })
    json.dump(out, sys.stdout, default=str)


if __name__ == "__main__":
    main()
