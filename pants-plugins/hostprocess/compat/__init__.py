"""HostProcess compatibility checks: what a Windows node would reject, decided on Linux.

Pure Python (no Pants): the Pants rules run the cheap checks at package time, and the image
test runner runs all of them on any image, ours or pulled.
"""
