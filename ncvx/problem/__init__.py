"""Problem definition: variables, the user's function, and its evaluation with batched derivatives."""
