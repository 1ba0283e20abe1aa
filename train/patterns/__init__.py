"""Masters -> pattern batches, and experimental patterns -> network input (imports `lake` only)."""
