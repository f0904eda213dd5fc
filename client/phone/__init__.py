"""The phone in the UI: the engine process bridge and the phone panel."""
