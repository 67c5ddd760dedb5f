"""What the neural backends (sao-small, sa3-small, musicgen-small) share, once.

    hub.py           locate model folders (a path or the Hugging Face cache); never downloads
    window.py        which latent frames to encode and generate around a region (pure functions)
    latent_cache.py  encoded latent frames per (source content, rate), reused by any overlapping edit
    paste.py         model rate in and out, level match, paste the source back, join the edges
    runtime.py       device, precision, threads, memory report, torch.compile with an eager fallback,
                     out-of-memory fallback to smaller batches

Nothing here imports a model; each backend brings its own.
"""
