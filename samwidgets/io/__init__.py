"""Files: atomic writes, the cache directory, SA-1B and COCO annotation files."""
