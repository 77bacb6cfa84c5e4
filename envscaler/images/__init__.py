"""Container images: a hardened base, a shared runtime layer, one thin layer per environment."""
