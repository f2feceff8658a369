"""Where manifests come from: a directory (Git checkout) or an S3 prefix."""
