"""Agent rollouts over scenarios: trajectories and rewards, and RL adapters."""
