"""The plugin's targets, one module per target; `fields` holds what their fields share."""
