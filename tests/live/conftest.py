"""Live progress streams and the state gateway replicas share through Redis: gateways serving on real ports in
the test's event loop (tests/support/live.py), read with a real SSE client (httpx-sse)."""
