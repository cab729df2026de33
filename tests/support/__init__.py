"""Helpers shared by more than one suite (the backend and the reliability tests): real components on loopback."""
