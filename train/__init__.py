"""ebsdlake train package."""
