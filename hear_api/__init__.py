"""HEAR API modules, one per embedder (``hear_api.spectral``, ...), each exporting `load_model`,
`get_scene_embeddings` and `get_timestamp_embeddings`; the shared code is `hear_api.core`.

    import hear_api.spectral as hear
    model = hear.load_model()
    scene = hear.get_scene_embeddings(audio, model)  # audio: (n_sounds, n_samples) at 16 kHz
"""
