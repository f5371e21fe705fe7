"""Integrations: the concrete search backends, chat surfaces and RCA engines behind bot.ports."""
