"""Pure, frozen domain values and functions. Imports nothing outside the standard library."""
