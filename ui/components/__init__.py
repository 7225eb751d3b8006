"""Reusable widgets, plain enough that the action helper and the frame build on them (they import neither)."""
