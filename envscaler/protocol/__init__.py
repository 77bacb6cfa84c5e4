"""The wire between the host and the sandbox, shared by both sides: framing, session dispatch, service
handlers, addresses, the bundle an image carries, server options, deadlines and error kinds.

It imports only the standard library, grpcio, protobuf and the generated messages (envscaler.v1): the sandbox
side (envscaler.runtime) and every host-side part import it, and it imports neither (see the import-linter
contracts in pyproject.toml).
"""
