"""The places runai-lite runs: `local` (embedded, the default) and `kube` (Kubernetes).

The CLI talks to either through the `Backend` protocol in `api.py`, and never imports a backend's
internals at module import time (CLI start-up must stay fast).
"""
