"""Environment and scenario specs: EnvScaler's formats, loaders, tool schemas, validation."""

from envscaler.spec.loader import Corpus, SpecError, load_corpus
from envscaler.spec.models import CheckSpec, EnvSpec, Scenario

__all__ = ["CheckSpec", "Corpus", "EnvSpec", "Scenario", "SpecError", "load_corpus"]
