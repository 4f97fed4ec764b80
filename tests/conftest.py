"""Shared test settings. Hypothesis runs a bounded number of examples so the suite stays fast."""

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")
