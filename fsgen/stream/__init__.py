"""Streaming ingestion run locally: replay a JSON-lines file through the generated stream
handler as Lambda would (:mod:`fsgen.stream.replay`), consume a Kinesis stream with
checkpoints (:mod:`fsgen.stream.consume`), and build the Lambda deployment zip
(:mod:`fsgen.stream.package`). The handler itself, its dead-letter destinations and its retry
policy live in :mod:`fsgen.runtime` because the deployed Lambda ships only that package."""
