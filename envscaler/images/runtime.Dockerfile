# The runtime layer: the base plus a self-contained venv (staged on the host from
# wheels; no compiler and no pip inside), running as the unprivileged sandbox user.
ARG BASE
FROM ${BASE}
COPY opt/ /opt/
RUN ["/opt/envscaler/bin/python3", "-m", "compileall", "-q", "-j", "0", "/opt/envscaler/lib"]
# The server's malloc: two arenas, and anything of 1 MiB or more mmapped, so a large request's memory goes back to the
# system when it is done instead of staying in a thread's arena (workers do not inherit these).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ENVSCALER_SANDBOX_SWEEP=1 MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=1048576
USER 10001:10001
HEALTHCHECK --interval=10s --timeout=3s --start-period=1s --retries=3 \
    CMD ["/opt/envscaler/bin/python3", "-m", "envscaler.protocol.health", "unix:/run/envscaler/env.sock"]
ENTRYPOINT ["/opt/envscaler/bin/python3", "-m", "envscaler.runtime.trusted.serve_bundle"]
CMD ["--help"]
