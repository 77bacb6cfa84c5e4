"""The pool manager: warm hardened containers, exclusive leases, one gRPC front door."""
