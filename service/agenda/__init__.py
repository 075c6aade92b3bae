"""The agenda domain: question bank, agenda composition and the block in the invite."""
