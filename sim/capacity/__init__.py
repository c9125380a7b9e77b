"""scaleplan."""
