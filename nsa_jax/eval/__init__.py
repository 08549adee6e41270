"""nsa_jax.eval."""
