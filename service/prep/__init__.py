"""Preparing for a 1:1: the prep nudge each person gets before their meeting."""
