"""Trainers' own environment interfaces, backed by a pool: the environment's code and checks run in its sandbox.

    envscaler.integrations.trl            TRL's GRPOTrainer `environment_factory` (pip install 'envscaler-runtime[trl]')
    envscaler.integrations.verifiers      a verifiers MultiTurnEnv (pip install 'envscaler-runtime[verifiers]')
    envscaler.integrations.envscaler_gem  EnvScaler's own RL environment classes, as GEM envs (pip install '...[gem]')

Each module imports its trainer's package; this one imports none.
"""
