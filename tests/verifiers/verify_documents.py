"""`verify-documents spdx|cyclonedx|provenance FILE`: check a document with its project's own code.

The plugin's tests run this PEX on the SBOMs and provenance the plugin wrote, so the judges
are the SPDX project's parser and validator (spdx-tools), the CycloneDX project's strict JSON
schema validator (cyclonedx-python-lib) and the in-toto project's protobuf messages
(in-toto-attestation), never the plugin's own idea of the formats. Exit status 0 and a one-line
summary on success; 1 and the validators' messages on failure.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

# Each check imports its library when it runs: CycloneDX's schema validator alone takes over a
# second to import (its format checkers build grammars), and the tests run this PEX often.

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"


class Invalid(Exception):
    """The document failed a check; the message lists what the validator said."""


def verify_spdx(path: str) -> str:
    """Parse with spdx-tools (all formats by file suffix) and validate as SPDX 2.3."""
    from spdx_tools.spdx.parser.error import SPDXParsingError
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    try:
        document = parse_file(path)
    except SPDXParsingError as e:
        raise Invalid("\n".join(e.get_messages()))
    messages = validate_full_spdx_document(document, spdx_version="SPDX-2.3")
    if messages:
        raise Invalid("\n".join(f"{m.validation_message} ({m.context})" for m in messages))
    return (
        f"SPDX 2.3 valid: {len(document.packages)} packages, {len(document.files)} files, "
        f"{len(document.relationships)} relationships"
    )


def verify_cyclonedx(path: str) -> str:
    """Validate against CycloneDX 1.6's strict JSON schema (no unknown properties)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    with open(path, encoding="utf-8") as f:
        text = f.read()
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text, all_errors=True)
    if errors is not None:
        raise Invalid("\n".join(str(error) for error in errors))
    bom = json.loads(text)
    components = bom.get("components", [])
    files = [c for c in components if c.get("type") == "file"]
    return (
        f"CycloneDX 1.6 valid: {len(components)} components, {len(files)} files, "
        f"{len(bom.get('dependencies', []))} dependency entries"
    )


def verify_provenance(path: str) -> str:
    """Parse as an in-toto v1 Statement and its predicate as SLSA v1 Provenance, strictly."""
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement

    with open(path, encoding="utf-8") as f:
        text = f.read()
    statement_pb = _parse(text, statement_pb2.Statement())
    statement = Statement.copy_from_pb(statement_pb)
    try:
        statement.validate()
    except ValueError as e:
        raise Invalid(f"in-toto Statement: {e}")
    if statement_pb.predicate_type != SLSA_PROVENANCE_V1:
        raise Invalid(f"predicateType is {statement_pb.predicate_type!r}, not {SLSA_PROVENANCE_V1}")
    # The predicate as written (not through the Statement's Struct, which turns numbers to floats).
    predicate = json.dumps(json.loads(text)["predicate"])
    provenance = _parse(predicate, provenance_pb2.Provenance())
    _check_provenance(provenance)
    dependencies = provenance.build_definition.resolved_dependencies
    return (
        f"SLSA v1 provenance valid: {len(statement_pb.subject)} subject(s), "
        f"{len(dependencies)} resolved dependencies, "
        f"buildType {provenance.build_definition.build_type}"
    )


def _parse(text: str, message: Any) -> Any:
    """Protobuf's JSON parser, refusing any field the message does not define."""
    from google.protobuf import json_format  # pants: no-infer-dep

    try:
        return json_format.Parse(text, message, ignore_unknown_fields=False)
    except json_format.ParseError as e:
        raise Invalid(f"{type(message).__name__}: {e}")


def _check_provenance(provenance: Any) -> None:
    """The fields SLSA v1 marks REQUIRED, and every ResourceDescriptor's own validation."""
    from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor

    definition = provenance.build_definition
    if not definition.build_type:
        raise Invalid("buildDefinition.buildType is required")
    if not definition.HasField("external_parameters"):
        raise Invalid("buildDefinition.externalParameters is required")
    if not provenance.run_details.builder.id:
        raise Invalid("runDetails.builder.id is required")
    descriptors = list(definition.resolved_dependencies) + list(provenance.run_details.byproducts)
    for index, descriptor in enumerate(descriptors):
        try:
            ResourceDescriptor.copy_from_pb(descriptor).validate()
        except ValueError as e:
            raise Invalid(f"resource descriptor {index}: {e}")


VERIFIERS: dict[str, Callable[[str], str]] = {
    "spdx": verify_spdx,
    "cyclonedx": verify_cyclonedx,
    "provenance": verify_provenance,
}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in VERIFIERS:
        print(f"usage: verify-documents {{{'|'.join(VERIFIERS)}}} FILE", file=sys.stderr)
        return 2
    kind, path = argv
    try:
        print(VERIFIERS[kind](path))
    except Invalid as e:
        print(f"INVALID {kind} document {path}:\n{e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
