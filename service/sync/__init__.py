"""Sync: provider changes applied onto series, occurrences and pairs.

It sits above agenda because it recognises the echo of our own agenda block.
"""
