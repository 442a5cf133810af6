"""Webhooks after Standard Webhooks: endpoints, rotating secrets, signed deliveries."""
