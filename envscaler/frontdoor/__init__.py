"""The MCP front door: every pooled environment served as an MCP server, one pool lease per handle.

HTTP (`frontdoor.http`): `POST /v1/leases` hands out a lease whose URL is a Streamable HTTP MCP endpoint.
stdio (`frontdoor.stdio`): one process, one lease, released when the process ends.
"""
