"""Interpretability methods: one module per method, each documented like a paper."""
