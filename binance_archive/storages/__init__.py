"""Built-in storages: the local file system (``local``) and S3-compatible buckets (``s3``)."""
