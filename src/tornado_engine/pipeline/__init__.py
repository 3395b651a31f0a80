"""Pipeline stages: resolver, downloader, muxer, uploader (one module each)."""
