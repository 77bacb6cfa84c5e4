"""The sandboxed tool server: a trusted gRPC front and untrusted worker processes."""
