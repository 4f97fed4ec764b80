# The single runai-lite image: the controller, the MIG node agent and the reservation pods all run
# it (`runai-lite controller | agent | reservation`), as the manifests of `runai-adm install --print`
# and the chart under deploy/runai-lite say.
#
#   docker build -t ghcr.io/runai-lite/runai-lite:0.1.0 .
#   kind load docker-image ghcr.io/runai-lite/runai-lite:0.1.0     # for a kind cluster

FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml ./
COPY runai_lite ./runai_lite
# pyproject names README.md as the package readme; the image does not need its text.
RUN touch README.md \
    && pip install --no-cache-dir . \
    && cd / && rm -rf /src \
    && runai-lite --help > /dev/null
WORKDIR /
# The controller and the reservation pods run as this user; the agent's pod asks for root (NVML).
USER 65532:65532
CMD ["runai-lite", "--help"]
