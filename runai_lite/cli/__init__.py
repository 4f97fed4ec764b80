"""The command lines: `runai` (researchers), `runai-adm` (administrators) and `runai-lite` (the
in-cluster controller and node agent). They talk to a backend only through
`runai_lite.backends.api.Backend`, and import backends, rich and the GPU catalog lazily so that
start-up stays fast."""
