"""Batch AI tasks: a tenant's inputs run through an agent type's champion in the background."""
