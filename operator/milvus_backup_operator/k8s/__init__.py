"""Kubernetes plumbing shared by the controllers, the executors and the Job runner."""
