"""Explanation penalties (right for the right reasons)."""
