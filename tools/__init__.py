"""Shared logic of the command-line tools: audio input (`tools.audio_io`), embedding extraction
(`tools.extract`), few-shot evaluation (`tools.fewshot`) and the submission packager
(`tools.package`). The top-level scripts only parse arguments and call into these modules."""
