"""Helpers shared by the test folders, one concept a module; test modules import them from here, and the
conftest.py files build their fixtures from them (no test imports a conftest).

- media: making clips with ffmpeg's lavfi sources, and the clip sets the fixtures hand out
- gifs: reading a GIF's structure and frames
- conversion: converting a file the way the CLI and the worker do
- net: free ports and quiet HTTP servers on 127.0.0.1
- proxy: a TCP proxy whose target can be cut and restored
- waiting: waiting on a condition with a deadline
- processes: child processes, liveness and stopping
- tasks: the task API over an HTTP client (create, status, wait for the end)
- embedded: the embedded app under Litestar's TestClient
- servers: a real `transmute serve` process
- cluster: distributed mode as real processes on RabbitMQ, PostgreSQL and a moto S3
- metrics: reading Prometheus pages
- deploy: rendering the Kubernetes manifests
"""
