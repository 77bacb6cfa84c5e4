"""The OpenEnv front door (`envscaler-runtime openenv`): every pooled environment served as an OpenEnv environment
server, one base URL per environment (/envs/<env_id>), one pool lease per OpenEnv session.

app: the routes and the Host/Origin/token guard; session: sessions over leases (one phase table);
actions: OpenEnv's wire shapes (actions, observations, error frames). docs/openenv.md shows it in use.
"""
