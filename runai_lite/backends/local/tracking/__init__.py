"""How a job attempt's processes are started, tracked, confined and stopped in the embedded mode.

Supervision speaks only the `ProcessTracker` protocol (`protocol.py`): start an attempt under the
shim, read whether it is over and how it ended, signal or kill all of it, freeze and thaw it, and
clean up. Three variants implement it, chosen once per daemon by `choice.choose_tracking` over a
probe of the machine:

- `cgroup_v2.CgroupV2Tracker`: one cgroup per attempt in the v2 hierarchy (`cgroup.events`
  `populated`, `cgroup.kill`, `cgroup.freeze`); nothing the job starts can leave it.
- `cgroup_v1.CgroupV1Tracker`: the v1 `pids` and `freezer` controllers, where only v1 exists.
- `process_tree.ProcessTreeTracker`: the shim's lock file and process group (what a daemon that
  may not create cgroups can do); a process that closes the lock and leaves the group escapes.

An attempt is over only when none of its processes is left: the job's main process exiting makes
the attempt *draining* (supervision kills what is left), not finished. `devices.py` adds the v1
`devices` controller's confinement to the job's own GPUs where the kernel offers it.

`shim.py` runs as its own program (`python -I -S`) and stays standard-library only.
"""
