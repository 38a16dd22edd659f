"""Exporters: traces out of the store as JSON documents (stdlib) or OTLP/HTTP protobuf (optional extra)."""
