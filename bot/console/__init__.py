"""The embedded web console: Jinja2 templates, server-sent events, no frontend build."""
