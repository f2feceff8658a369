"""Pure model: manifests, run records, observed state, canonical task definitions."""
