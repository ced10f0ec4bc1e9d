"""A local Kubernetes API simulator: the test bed and the zero-setup default of the demo.

``store`` and the HTTP ``app`` are the API server (issue 2); ``cluster/`` holds the
nodes, scheduler and kubelet, which are clients of the store like real ones are
clients of the API server (issue 3).
"""
