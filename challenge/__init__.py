"""The AutoSpeech challenge harness: dataset I/O (`challenge.data`), official scoring
(`challenge.scoring`) and the local ingestion runner (`challenge.ingestion`)."""
