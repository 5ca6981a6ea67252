"""The core: the message model, the turn pipeline and the ports every other part plugs into.
Imports nothing else of the project.
"""
