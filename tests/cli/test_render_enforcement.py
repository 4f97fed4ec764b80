"""How memory enforcement reads in `runai describe job` and `runai list -o wide`."""

from runai_lite.backends.api import JobInfo
from runai_lite.cli.render import enforcement_text
from runai_lite.model import JobStatus, JobType


def _job(enforcement: str | None, limit: int | None) -> JobInfo:
    return JobInfo(name="a", project="p", type=JobType.TRAIN, status=JobStatus.RUNNING, image="i",
                   submitted_at=0.0, enforcement=enforcement, memory_limit_mib=limit)


def test_an_advisory_limit_says_it_is_not_enforced():
    assert enforcement_text(_job("none", 4096)) == "none (advisory: not enforced) (4096 MiB)"


def test_the_framework_hook_names_its_reach():
    assert enforcement_text(_job("framework", 100)) == "framework (PyTorch/JAX only) (100 MiB)"


def test_no_enforcement_recorded_is_a_dash():
    assert enforcement_text(_job(None, None)) == "-"
