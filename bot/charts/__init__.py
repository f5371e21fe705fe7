"""Charts of what a rule saw around an incident: built from its rule and the search backend,
drawn as inline SVG (console) and PNG (Slack thread, Teams card)."""
