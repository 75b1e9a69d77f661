"""The environment the kit runs in: MMF at the pin, the kit's patches, the wheelhouse and the GPU
bundle for offline nodes, and the node's own Python (`pekit prepare`, `patch`, `mmf`,
`wheelhouse`, `gpu-bundle`)."""
