"""The sandbox side inside a container: what runs as uid 10002 with environment code (the zygote loop and its
workers, the tool channel, the pre-load wipe, the hand-written wire encoder). Standard library only, and never an
import of `envscaler.runtime.trusted`: nothing here can be trusted once environment code has run."""
