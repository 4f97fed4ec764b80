"""Hardware knowledge: the GPU/MIG catalog, the MIG layout algebra and the GPU drivers."""
