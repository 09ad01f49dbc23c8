"""The demo world: procedurally rendered scenes with captions (groundwork for a bundled
CPU demo pool of tiny text-to-image models; see hadis.demo.world)."""
