"""The kinds of event a job's history records, as `runai describe job` shows them."""

SUBMITTED = "Submitted"
IMAGE_NOT_USED = "ImageNotUsed"  # no usable docker/podman: the command runs directly
NOT_APPLICABLE = "NotApplicable"  # a submit flag that means nothing for this job's runtime (flag_support.py)
PENDING = "Pending"  # why it waits changed
BOUND = "Bound"
PARTITION_CREATED = "PartitionCreated"
STARTED = "Started"
DEVICE_CONFINEMENT = "DeviceConfinement"  # whether the kernel keeps the job off GPUs not its own
PREEMPTED = "Preempted"
REQUEUED = "Requeued"
PARTITION_DESTROYED = "PartitionDestroyed"
EXITED = "Exited"
RETRYING = "Retrying"  # a failed attempt is retried once its backoff has passed
BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"  # failed once more than --backoff-limit allows: not retried again
NOT_RETRIED = "NotRetried"  # the command could not be run at all (exit 126/127): a retry could not either
SUSPENDED = "Suspended"  # `runai suspend`: stopped, its GPUs freed, kept until resumed
RESUMED = "Resumed"  # `runai resume`: queued again
DELETED = "Deleted"
WARNING = "Warning"
LOG_TRIMMED = "LogTrimmed"
PROCESS_KILLED = "ProcessKilled"  # the daemon's audit found a process of a job that should have none
EXIT_RECORDED_LATE = "ExitRecordedLate"  # the exit status could not be written at once (a full disk)
EXIT_UNKNOWN = "ExitUnknown"  # the attempt's supervisor was killed; how the job ended cannot be known
