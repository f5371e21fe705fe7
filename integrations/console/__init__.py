"""The web console as a chat surface: cards are 'posted' to the live view."""

from integrations.console.surface import ConsoleChatSurface

__all__ = ["ConsoleChatSurface"]
