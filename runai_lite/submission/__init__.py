"""A job submission as the researcher typed it (`runai submit`'s flags), and how it becomes a
`JobSpec`: `flags.py` holds the flags and the receipt as plain data (no pydantic, so the CLI can send
them without loading the models), `values.py` reads each flag's text, `spec.py` checks them together
and builds the spec, wherever the job is submitted: in the CLI's process, or in the embedded daemon
that the CLI hands the flags to over its socket."""
