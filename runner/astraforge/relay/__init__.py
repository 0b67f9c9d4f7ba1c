"""The Sentry/GlitchTip relay: webhooks in, repository_dispatch or pipeline triggers out."""
