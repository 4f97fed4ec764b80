"""Shared test settings. Hypothesis runs a bounded number of examples so the suite stays fast."""

import os

from hypothesis import HealthCheck, settings

# Jobs run as processes unless a test asks for a container runtime: a podman or docker installed on
# the test machine must not turn every embedded test into a container test (images it cannot pull).
os.environ.setdefault("RUNAI_LITE_RUNTIME", "process")

settings.register_profile("ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")
