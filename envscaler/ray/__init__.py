"""envscaler.ray: one pool per Ray node behind one client API (`pip install envscaler-runtime[ray]`)."""

from envscaler.ray.pool import AsyncRayPool, AsyncRaySession, RayPool, RaySession
from envscaler.ray.routing import choose_node

__all__ = ["AsyncRayPool", "AsyncRaySession", "RayPool", "RaySession", "choose_node"]
