"""Trainer integrations: the pool behind the environment interfaces trainers already speak."""
