"""Who is calling: personal API tokens, the load balancer's OIDC header, a direct OIDC sign-in.

``bot.auth`` decides per request; this package holds the parts (docs/identity.md).
"""
