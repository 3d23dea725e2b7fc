#!/usr/bin/env python3
"""Regenerates src/spdx-ids.txt from the CycloneDX spdx schema vendored in
crates/testkit/schemas/cyclonedx/ (the one the tests validate against). The list is what
CycloneDX validators accept as `license.id`: an id missing from it must be emitted as
`license.name`. `cargo test -p gantry-sbom` checks the two agree."""
import json, pathlib, sys

here = pathlib.Path(__file__).parent
schema = json.loads((here / "../testkit/schemas/cyclonedx/spdx.SNAPSHOT.schema.json").read_text())
out = here / "src" / "spdx-ids.txt"
lines = [
    f"# SPDX license and exception ids accepted by CycloneDX's spdx.schema.json ({schema['$comment']}), one per line,",
    "# sorted by ASCII. Source: crates/testkit/schemas/cyclonedx/spdx.SNAPSHOT.schema.json (vendored from",
    "# cyclonedx-python-lib 11.12.0). Regenerate with crates/sbom/update-spdx-ids.py.",
] + sorted(schema["enum"])
out.write_text("\n".join(lines) + "\n")
print(f"{out}: {len(schema['enum'])} ids", file=sys.stderr)
