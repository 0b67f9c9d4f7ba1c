"""What the agent is told: frames mapped to code, suspect commits, repository facts, and the
prompt fitted to a token budget."""
