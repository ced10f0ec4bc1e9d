"""pytest fixtures for the simulator (owned by the simulator work, issue 2)."""
