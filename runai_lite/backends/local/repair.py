"""`runai-adm local repair`: rebuild a damaged state database from what can still be read.

The daemon is stopped first (jobs keep running; the next daemon adopts those whose rows come back).
The damaged files (`state.db` and its `-wal`) are kept beside it as `state.db.damaged-<time>`, and
a fresh database at the current schema receives every row that can still be read from them
(`store.recover_into`). What could not be read is reported as such per table, never invented.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .control import daemon_stop, home_of
from .store import Store, recover_into


@dataclass
class RepairReport:
    database: Path
    backup: Path
    recovered: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)  # table -> why reading it stopped

    def text(self) -> str:
        lines = [f"Rebuilt {self.database}; the damaged files are kept as {self.backup}*"]
        for table, count in self.recovered.items():
            note = f" (reading stopped early: {self.unreadable[table]})" if table in self.unreadable else ""
            lines.append(f"  {table}: {count} row(s) recovered{note}")
        if not self.recovered.get("config"):
            lines.append("The configuration was lost: run `runai-adm local init` again (with --simulate if used).")
        return "\n".join(lines)


def repair_home(home: Path | str | None = None, system: bool = False) -> RepairReport:
    home_dir, _ = home_of(home, system)
    daemon_stop(home_dir.root if not system else None, system=system)
    db = home_dir.db
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = db.with_name(f"{db.name}.damaged-{stamp}")
    scratch = db.with_name(f"{db.name}.reading-{stamp}")  # SQLite may touch what it reads: not the backup
    for suffix in ("", "-wal"):
        if Path(f"{db}{suffix}").exists():
            shutil.copy2(f"{db}{suffix}", f"{backup}{suffix}")
            Path(f"{db}{suffix}").rename(f"{scratch}{suffix}")
    Path(f"{db}-shm").unlink(missing_ok=True)
    fresh = Store(db)
    try:
        recovered, unreadable = recover_into(fresh, scratch)
    finally:
        fresh.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{scratch}{suffix}").unlink(missing_ok=True)
    return RepairReport(database=db, backup=backup, recovered=recovered, unreadable=unreadable)
