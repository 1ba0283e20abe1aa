"""ebsdlake ingest package."""
