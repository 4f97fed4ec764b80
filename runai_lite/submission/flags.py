"""`SubmitFlags`: `runai submit`'s flags as typed, and `SubmitReceipt`: what the CLI prints back.

Plain data that travels as JSON: no pydantic here, since `runai submit` loads this module on its way
to the embedded daemon, which does the checking (`spec.py`)."""

# Annotations are not postponed here: a named tuple compiles each postponed field annotation
# (typing.ForwardRef) when the module loads, ~0.2 ms apiece.
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class SubmitFlags(NamedTuple):
    """Every value as the researcher gave it (text, unparsed), the project already chosen. (A named
    tuple: a frozen dataclass of this many fields costs `runai submit` 2 ms of CPU to define.)"""

    project: str
    image: str
    name: str | None = None
    name_prefix: str | None = None
    gpu: str | None = None
    gpu_memory: str | None = None
    mig_profile: str | None = None
    interactive: bool = False
    preemptible: bool = False
    environment: tuple[str, ...] = ()
    working_dir: str | None = None
    backoff_limit: int | None = None
    command: tuple[str, ...] = ()  # the words after `--`
    replace_entrypoint: bool = False  # --command
    cpu: str | None = None
    memory: str | None = None
    cpu_limit: str | None = None
    memory_limit: str | None = None
    volumes: tuple[str, ...] = ()
    pvcs: tuple[str, ...] = ()
    large_shm: bool = False
    ports: tuple[str, ...] = ()
    service_type: str | None = None
    labels: tuple[str, ...] = ()
    node_type: str | None = None
    ttl_after_finish: str | None = None
    completions: int | None = None
    parallelism: int | None = None

    def to_json(self) -> dict[str, Any]:
        return self._asdict()


# Events a backend records at submit about what it cannot give the job as asked (printed as notes),
# and about a request no node of the cluster could hold today (a warning; gpu.fit.NEVER_FITS_EVENT).
NOTE_EVENTS = frozenset({"ImageNotUsed", "NotApplicable"})
WARNING_EVENTS = frozenset({"NeverFits"})


@dataclass(frozen=True)
class SubmitReceipt:
    """The job as stored: its name (generated from a prefix, perhaps) and project, with what the
    backend could not give it as asked (`notes`) and what it fears (`warnings`)."""

    name: str
    project: str
    notes: tuple[str, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())

    @classmethod
    def of(cls, name: str, project: str, events: Any) -> "SubmitReceipt":
        """From a submitted job's events (anything with `kind` and `message`)."""
        return cls(name=name, project=project,
                   notes=tuple(e.message for e in events if str(e.kind) in NOTE_EVENTS),
                   warnings=tuple(e.message for e in events if str(e.kind) in WARNING_EVENTS))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SubmitReceipt":
        return cls(name=str(data["name"]), project=str(data["project"]), notes=tuple(map(str, data.get("notes", ()))),
                   warnings=tuple(map(str, data.get("warnings", ()))))
