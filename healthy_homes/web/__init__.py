"""Shared web infrastructure: NHS design system templates, assets, security headers, CSRF.

Nothing here imports a domain package: pages (such as ``flags.popup``) build on it.
"""
