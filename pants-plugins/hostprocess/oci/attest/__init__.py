"""Supply-chain documents about an image: SBOMs, provenance and signatures (pure core)."""
