"""The documents written about an image, with the types that name them in `dist/`, in
registries (as referrers' `artifactType`) and in signed statements (`predicateType`)."""

from __future__ import annotations

from dataclasses import dataclass

# The one home of these names: the documents, the signing modules and the push share them.
IN_TOTO_MEDIA_TYPE = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"


@dataclass(frozen=True)
class DocumentKind:
    name: str  # as `sbom_formats` and `<name>.image.json` spell it
    suffix: str  # of its file in `dist/`
    media_type: str  # of the file, and of the referrer's one layer
    predicate_type: str  # when the document is signed as an in-toto statement's predicate

    @property
    def artifact_type(self) -> str:
        """The referrer manifest's `artifactType`: the document's own media type."""
        return self.media_type


DOCUMENT_KINDS = {
    kind.name: kind
    for kind in (
        DocumentKind("spdx", ".spdx.json", "application/spdx+json", "https://spdx.dev/Document"),
        DocumentKind(
            "cyclonedx", ".cdx.json", "application/vnd.cyclonedx+json", "https://cyclonedx.org/bom"
        ),
        # The provenance is already an in-toto statement about the image.
        DocumentKind("provenance", ".provenance.json", IN_TOTO_MEDIA_TYPE, SLSA_PROVENANCE_V1),
    )
}
