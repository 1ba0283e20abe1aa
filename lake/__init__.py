"""ebsdlake lake package."""
