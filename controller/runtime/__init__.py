"""The pass and the loop that runs it."""
