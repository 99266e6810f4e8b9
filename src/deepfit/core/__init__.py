"""The lowest layer, used by every other: `notes` (the run's decisions and warnings, logged and
saved) and `io` (atomic writes, JSON, safetensors weights with their SHA-256, run directories)."""
