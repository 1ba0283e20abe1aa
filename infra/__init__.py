"""ebsdlake infra package."""
