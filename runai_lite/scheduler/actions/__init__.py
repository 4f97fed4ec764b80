"""Scheduler actions: allocate (free capacity, idle MIG instances), preempt and reclaim (victims).

Each action proposes `Option`s; the session commits the chosen one. Policies (ordering, quota, MIG
choice, fraction placement) live beside this package and are what actions consult.
"""
