"""Real Chroma servers of any release (from its cached environment, or its Docker image), and the
client/server skew matrix."""
