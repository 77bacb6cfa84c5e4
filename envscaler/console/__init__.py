"""The web console: browse environments, play a scenario by hand through the pool, watch the pool, read
rollouts (`envscaler-runtime console`)."""
