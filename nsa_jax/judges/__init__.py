"""nsa_jax.judges."""
