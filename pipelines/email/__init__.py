"""E-mail through SMTP: notices and report links."""
