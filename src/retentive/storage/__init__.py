"""Writing run outputs so that a kill at any moment loses nothing already made."""
