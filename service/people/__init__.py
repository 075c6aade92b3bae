"""People: who appears in a 1:1, their name and time zone, their choice about email."""
