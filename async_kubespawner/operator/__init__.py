"""Operator mode: a leader-elected operator provisions JupyterHub servers from templates.

An administrator owns ``NotebookTemplate`` objects (which pods, PVCs and other objects a
server consists of, and which variables a hub may set). The hub only creates a small
``NotebookServer`` per server (:class:`.spawner.OperatorSpawner`); the operator
(``python -m async_kubespawner.operator``) renders the template with the server's
variables, creates the children it owns and reports progress through the
NotebookServer's status and Events. The hub needs no right to create pods.
"""
