"""Tenant custom domains: hostname validation and DNS ownership verification."""
