"""ebsdlake simulate package."""
