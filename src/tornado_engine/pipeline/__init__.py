"""The pipeline: one module per stage, each with one entry point ``stage(ctx, previous) -> result``.

    context    StageContext (what every stage is given) and the results handed on:
               Resolved -> Fetched -> Muxed -> Stored
    resolve    resolve(ctx) -> Resolved                 yt-dlp extract_info (resolver)
    download   download(ctx, Resolved) -> Fetched       fast path, or yt-dlp (fastpath/, downloader, sidecar)
    mux        mux(ctx, Fetched) -> Muxed               probe, labels, late quota check, ffmpeg (muxer)
    upload     upload(ctx, Muxed, title=) -> Stored     media and side files into storage

The modules in parentheses drive the tools (yt-dlp, sockets, ffmpeg) and know nothing of jobs; the runner
(:mod:`tornado_engine.runner`) sequences the stages. ``playlist`` serves submit, not a job's run;
``children`` stops the ffmpeg a live recording runs under yt-dlp when its job is cancelled.
"""
