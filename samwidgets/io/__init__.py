"""Files: atomic writes, the cache directory, file hashes, SA-1B and COCO annotation files."""
