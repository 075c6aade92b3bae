"""The company directory: people, who manages whom, who left, and who has no 1:1 yet."""
