"""Segue: one conversation per customer across Telegram, Slack and web chat."""
