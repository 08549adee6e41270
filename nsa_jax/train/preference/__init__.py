"""Preference training on the core loop: DPO (sigmoid and IPO) with a stored frozen reference; the reward model
(a scalar head trained with the Bradley-Terry loss)."""
