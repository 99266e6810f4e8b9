"""Images: folders of files, arrays and torchvision's named sets (modality.py: Image)."""
