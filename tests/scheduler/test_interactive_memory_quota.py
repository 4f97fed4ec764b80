"""A `--gpu-memory` share costs more quota on a small GPU than on a large one. An interactive job
goes where its charge fits the project's deserved quota, instead of being refused for the policy's
favourite small GPU and then preempting a training job for the large one on the next cycle."""

from runai_lite.model import Bind, Preempt, Project, Snapshot
from runai_lite.scheduler import apply_plan, plan
from tests.scheduler.builders import gpu, job, node


def test_an_interactive_memory_job_takes_the_gpu_where_its_charge_fits_the_quota():
    snapshot = Snapshot(
        nodes=(node("node-0", gpu(0, "A100-SXM4-40GB"), gpu(1, "T4")),),
        jobs=(job("trainer", gpu="0.75", at=20), job("notebook", type="interactive", gpu_memory="12GB", at=21)),
        projects=(Project(name="team-a", deserved_gpus=0.5),),
    )
    first = plan(snapshot)
    binds = {b.job: b.allocation for b in first.of_type(Bind)}
    # 12GB is 0.28 of the A100 (within the 0.5 quota) but 0.75 of the T4 (over it)
    assert binds["notebook"].gpu_indices == (0,) and binds["notebook"].share_milli == 283
    assert binds["trainer"].gpu_indices == (1,)
    assert first.pending == ()
    again = plan(apply_plan(snapshot, first))
    assert again.of_type(Preempt) == [] and again.of_type(Bind) == []
