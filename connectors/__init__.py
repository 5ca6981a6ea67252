"""One module per channel: parsing its input and rendering its output."""
