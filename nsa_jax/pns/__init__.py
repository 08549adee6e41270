"""nsa_jax.pns."""
