"""The kinds of event a job's history records, as `runai describe job` shows them."""

SUBMITTED = "Submitted"
IMAGE_NOT_USED = "ImageNotUsed"  # no usable docker/podman: the command runs directly
PENDING = "Pending"  # why it waits changed
BOUND = "Bound"
PARTITION_CREATED = "PartitionCreated"
STARTED = "Started"
DEVICE_CONFINEMENT = "DeviceConfinement"  # whether the kernel keeps the job off GPUs not its own
PREEMPTED = "Preempted"
REQUEUED = "Requeued"
PARTITION_DESTROYED = "PartitionDestroyed"
EXITED = "Exited"
RETRYING = "Retrying"
DELETED = "Deleted"
WARNING = "Warning"
