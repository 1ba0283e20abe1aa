"""A stored training run (`Run`) and everything that reads one back: inference, evaluation, prediction, protocols."""
