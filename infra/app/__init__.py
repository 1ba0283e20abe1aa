"""The application: the `ebsdlake` CLI, cross-stage commands, the demo and the warm-up. Uses every stage; no stage imports it."""
