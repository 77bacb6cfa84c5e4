# The runtime layer: the base plus a self-contained venv (staged on the host from
# wheels; no compiler and no pip inside), running as the unprivileged sandbox user.
ARG BASE
FROM ${BASE}
COPY opt/ /opt/
RUN ["/opt/envscaler/bin/python3", "-m", "compileall", "-q", "-j", "0", "/opt/envscaler/lib"]
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ENVSCALER_SANDBOX_SWEEP=1
USER 10001:10001
HEALTHCHECK --interval=10s --timeout=3s --start-period=1s --retries=3 \
    CMD ["/opt/envscaler/bin/python3", "-m", "envscaler.runtime.healthcheck", "unix:/run/envscaler/env.sock"]
ENTRYPOINT ["/opt/envscaler/bin/envscaler-runtime"]
CMD ["--help"]
