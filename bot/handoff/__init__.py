"""Handing a conversation to people: its state in the turn, the desk agents act through, their
accounts.
"""
