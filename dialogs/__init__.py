"""The dialog runtime: flows in YAML, intent recognition, slots, rasa-sdk actions.

Kept free of imports so that a Rasa action server loading `dialogs.demo.actions`
pulls in nothing but the actions themselves.
"""
