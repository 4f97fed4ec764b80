"""`python -m tests.kube_emulator serve ...` (see standalone.py)."""

from .standalone import main

raise SystemExit(main())
