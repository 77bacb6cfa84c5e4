"""The trusted side inside a container (uid 10001, the server's): the gRPC server, the supervisor of the zygote
and its workers, the watchers and the launcher. It reads the sandbox only through the wire's checked decoder
(`wire.py`) and never imports `envscaler.runtime.sandbox`."""
