"""Who runs what inside a sandbox container: the one definition of its uids, read by the image build (the user it
creates, the owner of the scenarios' bundle), the container launcher (the socket directory's owner, the peer check),
the Kubernetes manifests and the in-container launcher (which drops environment code to the sandbox uid).

Two meanings, two names: the container's own user is the trusted server's; environment code runs as another.
"""

from __future__ import annotations

SERVER_UID = 10001  # the container's user: the trusted gRPC server (and its gid); owns the socket directory, the bundle
SANDBOX_UID = 10002  # environment code: the zygote, its workers and their checks (and its gid)
