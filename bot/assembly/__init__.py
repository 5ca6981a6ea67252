"""The composition root: builds every part once, in order, and runs them (app, CLI, HTTP
server, logging).
"""
