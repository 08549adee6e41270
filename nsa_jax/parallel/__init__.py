"""nsa_jax.parallel."""
