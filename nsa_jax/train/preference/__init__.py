"""Preference and judge training on the core loop: DPO (sigmoid and IPO) with a stored frozen reference; the
reward model (a scalar head, Bradley-Terry) and the PRM (a scalar head, step BCE)."""
