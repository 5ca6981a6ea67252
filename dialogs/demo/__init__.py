"""The shipped demo support bot: its flows (YAML) and its rasa-sdk actions."""
