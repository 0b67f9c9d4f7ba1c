"""The agent: a tool-calling loop over any OpenAI-compatible API, run inside a sandbox."""
