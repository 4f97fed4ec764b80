"""A GPU an administrator put in MIG mode without marking it dynamic-MIG: the pending reason says
what is missing and how to enable on-demand partitions."""

from runai_lite.model import Project, Snapshot
from runai_lite.scheduler import plan
from tests.scheduler.builders import gpu, job, node


def _static_mig_a100():
    return gpu(0, "A100-SXM4-40GB").model_copy(update={"mig_enabled": True})


def test_memory_and_profile_requests_on_a_static_mig_gpu_say_how_to_enable_dynamic_mig():
    snapshot = Snapshot(nodes=(node("n1", _static_mig_a100()),),
                        jobs=(job("by-memory", gpu_memory="10GB"), job("by-profile", mig_profile="2g.10gb")),
                        projects=(Project(name="team-a", deserved_gpus=2),))
    result = plan(snapshot)
    assert not result.actions
    for name, profile in (("by-memory", "1g.10gb"), ("by-profile", "2g.10gb")):
        reason = result.pending_reason(name)
        assert reason is not None
        assert f"no idle {profile}" in reason and "not dynamic-MIG" in reason
        assert "--dynamic-mig-enabled" in reason
        assert "0MiB" not in reason
