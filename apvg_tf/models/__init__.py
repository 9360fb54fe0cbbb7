"""The networks of the three stages."""
