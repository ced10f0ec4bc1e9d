"""Nodes, scheduler and kubelet: in-process controllers that act on the simulator's store."""
