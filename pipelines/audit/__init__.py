"""The audit log as the provider reads it."""
