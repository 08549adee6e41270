"""Preference training on the core loop: DPO (sigmoid and IPO) with a stored frozen reference."""
