"""The tracing core that every front door starts: the session and what it owns (recorder, split traces,
in-flight spans, child processes, the options they are made from)."""
