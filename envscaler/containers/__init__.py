"""Running environment images as hardened containers, reachable over a Unix socket."""
