"""Keeping a controller's long-lived heap out of the cyclic garbage collector's full passes.

A controller holds every object of a large cluster for hours (the watch cache, the view's
derivations): at 1,000 nodes and 11,800 pods, millions of Python objects. CPython walks all of
them in a full collection whenever the objects that survived since the last one reach a quarter
of them, which a pass's fresh lists do every few passes: about 0.6 s of CPU on such a pass.
`gc.freeze()` moves every object alive into a permanent generation that collections never walk;
reference counting still frees them as usual. What it costs: cyclic garbage alive at a freeze is
never collected. So the first freeze (after the first pass) takes what start-up left as it is,
and later ones, every `every` passes, first collect what was made since the last freeze (which
walks only that). Process-wide, so only the controller's own loop (and its benchmark) use it.
"""

from __future__ import annotations

import gc


class HeapFreezer:
    def __init__(self, every: int = 50) -> None:
        self.every = every
        self._passes = 0
        self._frozen = False

    def after_pass(self) -> None:
        """Called after each pass that did work."""
        self._passes += 1
        if self._frozen and self._passes < self.every:
            return
        if self._frozen:
            gc.collect()  # what the passes since the last freeze left in cycles
        gc.freeze()
        self._frozen = True
        self._passes = 0
