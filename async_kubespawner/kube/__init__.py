"""Talking to the Kubernetes API: the shared client, the retry policy, reflectors and their cache."""
