"""ACME certificates for tenants' verified domains: issuance, renewal, revocation, export."""
