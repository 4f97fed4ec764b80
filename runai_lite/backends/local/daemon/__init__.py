"""The embedded controller: one per home, started in the background by the first command that needs
it (`control.ensure_daemon` runs `server.personal_main()`, which runs `daemon.main.main()` behind
the owner's socket, in a new session, with `--home H`).

The daemon is a sequencer of small units (`sequencer.Daemon.cycle` only orders them). Each unit is
made from a `DaemonContext` (store, driver, home, settings, process tracker) and called with the
time; it says whether it changed anything:
1. `supervise.Supervisor`: read back which job attempts ended and settle them; signal stopping jobs
   (SIGTERM, then SIGKILL after the grace period);
2. `schedule.Scheduler`: build a `Snapshot` from the store, call `scheduler.plan`, and record the
   plan's intents in one transaction (`intents.py`);
3. `mig.MigRealiser`: realise MIG layouts through `agent.reconcile` and record what now exists;
4. `launch.Launcher`: start bound jobs whose resources are really free;
and `publish.py` writes the driver's GPUs to the store at start.

Every unit reads its work from the store, so a daemon killed at any point is replaced by one that
carries on from there: it adopts job processes that still run, settles those that ended while it
was down, and relaunches attempts that never started. Processes are reached only through the
`tracker.ProcessTracker` the context carries.
"""
