"""The pure decision engine: a `Snapshot` in, a `Plan` out. No I/O, no clock, no unseeded randomness."""
