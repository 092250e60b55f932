"""Reports generated from records: README tables (and plots)."""
