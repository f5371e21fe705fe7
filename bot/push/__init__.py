"""Push ingest: alerts other systems send (Prometheus, Grafana, Splunk alert actions) enter the
same pipeline as the bot's own detector runs. Vendor wire formats live in ``integrations/``."""
