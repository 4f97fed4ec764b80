"""docs/cli.md documents `-o json|yaml` field by field; the output of real commands (real daemon,
SQLite, processes, simulated GPUs) must have exactly those fields with exactly those types."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.e2e.cli_harness import REPO, Cli, cli  # noqa: F401 - the fixture

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SCALARS = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,)}


def documented() -> dict[str, dict[str, str]]:
    """Each `### Title` section of the scripting part of docs/cli.md: field -> type."""
    text = (REPO / "docs" / "cli.md").read_text()
    text = text[text.index("## Scripting: `-o json` and `-o yaml`"):]
    sections: dict[str, dict[str, str]] = {}
    for title, body in re.findall(r"^### (.+?)\n(.*?)(?=^### |\Z)", text, flags=re.S | re.M):
        rows = re.findall(r"^\| `([a-z_]+)` \| ([^|]+?) \|", body, flags=re.M)
        sections[title.strip()] = dict(rows)
    return sections


DOC = documented()


def check(value: Any, kind: str, where: str) -> None:
    nullable = kind.endswith(" or null")
    kind = kind.removesuffix(" or null")
    if value is None:
        assert nullable, f"{where} is null, documented as {kind}"
        return
    if kind.startswith("array of "):
        assert isinstance(value, list), f"{where} is {value!r}, documented as {kind}"
        item = kind.removeprefix("array of ")
        for i, element in enumerate(value):
            check(element, item.removesuffix("s") if item in ("strings", "integers") else item, f"{where}[{i}]")
        return
    if kind == "object of strings":
        assert isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        return
    if kind.endswith(" object") or kind.endswith(" objects"):
        check_object(value, kind.removesuffix(" objects").removesuffix(" object"), where)
        return
    types = SCALARS[kind]
    assert isinstance(value, types) and (bool in types or not isinstance(value, bool)), \
        f"{where} is {value!r}, documented as {kind}"
    if kind == "string" and where.rsplit(".", 1)[-1] in ("submitted_at", "started_at", "finished_at", "ended_at",
                                                          "time"):
        assert RFC3339_UTC.match(value), f"{where} is {value!r}, not an RFC 3339 UTC time"


def check_object(value: Any, section: str, where: str, extra: str | None = None) -> None:
    fields = dict(DOC[section], **(DOC[extra] if extra else {}))
    assert isinstance(value, dict), f"{where} is {value!r}, documented as a {section} object"
    assert sorted(value) == sorted(fields), f"{where}: output fields {sorted(value)} != documented {sorted(fields)}"
    for name, kind in fields.items():
        check(value[name], kind, f"{where}.{name}")


def both(cli: Cli, *args: str) -> Any:
    """The command's `-o json`, after checking that `-o yaml` holds the same data."""
    data = json.loads(cli.runai(*args, "-o", "json").stdout)
    assert yaml.safe_load(cli.runai(*args, "-o", "yaml").stdout) == data
    return data


def test_every_section_has_fields():
    assert {"Job", "Job description", "Allocation", "Options", "Event", "Project", "Node", "GPU", "MIG instance",
            "Fraction", "Placement", "Volume", "PVC", "Port", "Attempt", "Job usage", "GPU process"} <= set(DOC)
    assert all(DOC.values())


def test_options_with_volumes_claims_and_ports_match_the_documented_fields():
    """Jobs run as processes here cannot take -v, --pvc or --port: their items are checked on the
    record both backends print them from."""
    from runai_lite.backends.api import JobOptions
    from runai_lite.model import PortMapping, PvcMount, VolumeMount

    options = JobOptions(volumes=(VolumeMount(host_path="/d", container_path="/data", read_only=True),),
                         pvcs=(PvcMount(container_path="/m", claim_name="c"),
                               PvcMount(container_path="/n", storage_class="s", size_bytes=10**9)),
                         ports=(PortMapping(container_port=80, host_port=8080), PortMapping(container_port=22)),
                         labels=(("team", "vision"),), ttl_after_finish_s=60)
    check_object(json.loads(json.dumps(options.to_json())), "Options", "options")


@pytest.mark.e2e
def test_json_and_yaml_output_match_the_documented_fields(cli: Cli):
    cli.adm("local", "init", "--simulate", "A100-SXM4-40GB:1,T4:1")
    cli.adm("project", "create", "team-a", "--deserved-gpus", "2")
    cli.runai("config", "project", "team-a")
    node = cli.nodes()[0]["name"]
    cli.adm("set", "node-role", "--dynamic-mig-enabled", node)
    cli.runai("submit", "mig", "-i", "img", "--gpu-memory", "500Mi", "--", "sleep", "600")
    cli.runai("submit", "frac", "-i", "img", "--gpu", "0.5", "-l", "team=vision", "--", "sleep", "600")
    cli.runai("submit", "whole", "-i", "img", "--gpu", "1", "--", "sleep", "600")  # the T4 is shared: it waits
    cli.runai("submit", "done", "-i", "img", "--", "true")
    jobs = cli.wait_for("mig and frac Running, done Succeeded",
                        lambda j: (j.get("mig", {}).get("status"), j.get("frac", {}).get("status"),
                                   j.get("done", {}).get("status")) == ("Running", "Running", "Succeeded"))

    listed = both(cli, "list")
    assert {j["name"] for j in listed} == {"mig", "frac", "whole", "done"}
    for job in listed:
        check_object(job, "Job", job["name"])
    by_name = {j["name"]: j for j in listed}
    assert (by_name["frac"]["gpus_requested"], by_name["frac"]["requested"]) == (0.5, "0.5")
    assert (by_name["mig"]["gpus_requested"], by_name["mig"]["requested"],
            by_name["mig"]["gpu_memory_requested_bytes"]) == (None, "500Mi", 500 * 2**20)
    assert by_name["done"]["node"] == node and by_name["done"]["allocation"] is None  # where it ran, kept
    assert by_name["whole"]["node"] is None and by_name["whole"]["pending_reason"]
    table = cli.runai("list").stdout
    assert re.search(rf"^done +Succeeded +\S+ +{re.escape(node)} ", table, flags=re.M)
    assert re.search(r"^mig +Running .* 1g\.5gb \(500Mi\)$", table, flags=re.M)

    for name in ("mig", "frac", "done"):
        check_object(both(cli, "describe", "job", name), "Job", name, extra="Job description")
    assert both(cli, "describe", "job", "done")["attempt_history"][0]["outcome"] == "succeeded"
    usage = both(cli, "top", "job")
    assert {row["name"] for row in usage} == {"mig", "frac", "whole"}  # unfinished jobs only
    for row in usage:
        check_object(row, "Job usage", row["name"])
    assert [p["device"] for p in next(r for r in usage if r["name"] == "frac")["processes"]]
    assert jobs["frac"]["allocation"]["kind"] == "fraction"

    for project in both(cli, "list", "projects"):
        check_object(project, "Project", project["name"])
    for command in (("list", "nodes"), ("top", "node")):
        for shown in both(cli, *command):
            check_object(shown, "Node", shown["name"])
    check_object(both(cli, "describe", "node", node), "Node", node)
