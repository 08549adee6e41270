"""nsa_jax.train."""
