"""The typed command line shared by the plugin's helper programs, shipped in each PEX."""
