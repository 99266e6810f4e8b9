"""Data: sources → splits → preprocessing → batches. One direction, no back and forth."""
