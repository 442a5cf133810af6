"""Comparison of a challenger with its champion, drift, the promotion gate and alias moves."""
