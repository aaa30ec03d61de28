"""Which Ray node this process runs on, as ``ready.node`` and the model's receipts name it."""

from __future__ import annotations


def node_label() -> str:
    """``ip:node-id-prefix``: the address says where, the id tells apart two nodes on one host."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    return f"{ray.util.get_node_ip_address()}:{node_id[:8]}"
