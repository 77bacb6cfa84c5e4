"""Generated gRPC stubs for envscaler.v1 (see proto/)."""
