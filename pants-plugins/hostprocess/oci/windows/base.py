"""Contents of the built-in base layer, equivalent to Microsoft's HostProcess base image.

Like Microsoft's, it holds `Files/` only: licence texts and the five registry hives a
parentless Windows layer must carry. The hives are valid empty regf files rather than
zero-byte placeholders, which Windows Server 2025 rejects.
"""

from __future__ import annotations

from hostprocess.oci.windows.hive import empty_hive
from hostprocess.oci.windows.layer import LayerFile

HIVES = ("DEFAULT", "SAM", "SECURITY", "SOFTWARE", "SYSTEM")
HIVE_ROOT_KEY = "$$$PROTO.HIV"

LICENSE_TXT = b"""\
This container image's base layer was produced by the hostprocess Pants plugin.

To the extent possible under law, the authors have waived all copyright and related or
neighboring rights to the contents of this base layer (this notice, the empty registry
hives under Windows\\System32\\config and cc0-legalcode.txt) under the CC0 1.0 Universal
Public Domain Dedication; its legal code is in cc0-legalcode.txt.

Files added on top of this layer carry their own licences.
""".replace(
    b"\n", b"\r\n"
)


def base_layer_files(cc0_legalcode: bytes) -> list[LayerFile]:
    """The files of the base layer, destination paths relative to C:\\."""
    files = [
        LayerFile("License.txt", LICENSE_TXT),
        LayerFile("cc0-legalcode.txt", cc0_legalcode),
    ]
    hive = empty_hive(HIVE_ROOT_KEY)
    files.extend(LayerFile(f"Windows/System32/config/{name}", hive) for name in HIVES)
    return files
