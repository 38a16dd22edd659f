"""Renderers: pure functions from model objects to rich renderables."""
