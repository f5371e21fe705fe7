"""Similar past incidents: which resolved incidents look like this one, and how each ended."""
